"""Background threads carry their names into the kernel, where top -H and profilers read them."""

import sys
import threading
from pathlib import Path

import pytest

from heron._threads import start_thread

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="thread names are read from /proc (Linux)"
)


def _kernel_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


def test_a_started_thread_is_named_in_the_kernel_truncated_to_15_bytes() -> None:
    seen: dict[str, str] = {}
    done = threading.Event()

    def work() -> None:
        seen["kernel"] = _kernel_name(threading.get_native_id())
        done.set()

    thread = start_thread(work, "heron-log-flusher")
    assert done.wait(5)
    thread.join(5)
    assert thread.name == "heron-log-flusher"
    assert thread.daemon
    assert seen["kernel"] == "heron-log-flush"
    # The caller's own name is untouched.
    assert _kernel_name(threading.get_native_id()) != "heron-log-flush"
