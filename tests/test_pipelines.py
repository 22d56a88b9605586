"""Pipelines: declaring, caching (and why), lineage, executors, failures, resume, cancel."""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import heron
from heron._pipelines._pipeline import Handle, Node, Pipeline

# --- steps used across tests (module level: the local executor ships them by reference) ---


@heron.step
def load(n: int) -> list[int]:
    return list(range(n))


@heron.step
def total(xs: list[int]) -> int:
    return sum(xs)


@heron.pipeline
def tiny(n: int = 10):
    return total(load(n))


@heron.step
def double(xs: list[int]) -> list[int]:
    return [2 * x for x in xs]


@heron.step
def square(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


@heron.step
def combine(a: list[int], b: list[int]) -> dict[str, int]:
    heron.current_step().log_metric("combined", sum(a) + sum(b))
    return {"a": sum(a), "b": sum(b)}


@heron.pipeline
def diamond(n: int = 5):
    xs = load(n)
    return combine(double(xs), square(xs))


@heron.step(cache=False)
def uncached_load(n: int) -> list[int]:
    return list(range(n))


@heron.pipeline
def uncached(n: int = 3):
    return total(uncached_load(n))


@heron.step
def chatty(n: int) -> int:
    print(f"hello from a step, n={n}")
    logging.getLogger("user.code").warning("a warning from user code")
    return n


@heron.pipeline
def talk(n: int = 1):
    return chatty(n)


@heron.step
def boom(xs: list[int]) -> int:
    raise ValueError("boom: the data is bad")


@heron.pipeline
def raising():
    return boom(load(3))


@heron.step
def generator(xs: list[int]) -> Any:
    return (x for x in xs)


@heron.pipeline
def unserialisable():
    return generator(load(3))


@heron.step(timeout=0.5)
def hang(xs: list[int]) -> int:
    time.sleep(60)
    return 0


@heron.pipeline
def hanging():
    return hang(load(3))


@heron.step(retries=2, retry_backoff=0.01)
def flaky(counter: str) -> int:
    path = Path(counter)
    tries = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(tries))
    if tries < 3:
        raise ConnectionError(f"flaky attempt {tries}")
    return tries


@heron.pipeline
def retrying(counter: str):
    return flaky(counter)


@heron.step
def fail_if(flag: str, xs: list[int]) -> int:
    if Path(flag).exists():
        raise RuntimeError("the flag file is there")
    return len(xs)


@heron.pipeline
def resumable(flag: str):
    return fail_if(flag, uncached_load(4))


@heron.step
def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n), "y": [float(i) / 2 for i in range(n)]})


@heron.step
def stats(df: pd.DataFrame) -> tuple[np.ndarray, float]:
    return df["x"].to_numpy(), float(df["y"].sum())


@heron.pipeline
def frames(n: int = 4):
    arr, ysum = stats(frame(n))
    return {"arr": arr, "ysum": ysum}


class Scale(heron.Step):
    def run(self, xs: list[int], factor: int = 3) -> list[int]:
        return [x * factor for x in xs]


scale = Scale()


@heron.pipeline
def scaled(factor: int = 3):
    return total(scale(load(4), factor=factor))


@heron.step
def rendezvous(me: str, other: str) -> str:
    """Waits for its sibling: only succeeds if both run at the same time."""
    Path(me).write_text("here")
    deadline = time.monotonic() + 30
    while not Path(other).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the sibling branch never ran alongside")
        time.sleep(0.01)
    return me


@heron.pipeline
def parallel(a: str, b: str):
    return [rendezvous(a, b), rendezvous(b, a)]


@heron.step
def sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@heron.step
def cancel_own_run(x: int) -> int:
    ctx = heron.current_step()
    ctx.client.cancel_pipeline_run(ctx.pipeline_run_id)
    return x


@heron.pipeline
def cancellable():
    return [sleeper(60.0), total(load(cancel_own_run(2)))]


def run(p: Any, client: heron.Client, **kwargs: Any) -> heron.PipelineRun:
    return heron.run_pipeline(p, client=client, progress=False, **kwargs)


# --- the acceptance snippet, on each executor and transport --------------------------------


@pytest.mark.parametrize("executor", ["inprocess", "local"])
def test_acceptance(client: heron.Client, executor: str) -> None:
    first = run(tiny, client, params={"n": 10}, executor=executor)
    again = run(tiny, client, params={"n": 10}, executor=executor)
    assert first.status == "succeeded" and first.output == 45
    assert all(s.cached for s in again.steps.values())
    assert again.output == 45
    assert not any(s.cached for s in first.steps.values())


def test_acceptance_as_written(tmp_path: Path) -> None:
    """The issue's snippet as a script, on the default embedded store."""
    script = tmp_path / "acceptance.py"
    script.write_text(
        textwrap.dedent(
            """
            import heron

            @heron.step
            def load(n: int) -> list[int]:
                return list(range(n))

            @heron.step
            def total(xs: list[int]) -> int:
                return sum(xs)

            @heron.pipeline
            def tiny(n: int = 10):
                return total(load(n))

            first = heron.run_pipeline(tiny, params={"n": 10}, executor="local")
            again = heron.run_pipeline(tiny, params={"n": 10}, executor="local")
            assert first.status == "succeeded" and first.output == 45
            assert all(s.cached for s in again.steps.values())
            print("ok")
            """
        )
    )
    import subprocess

    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- declaring -----------------------------------------------------------------------------


def test_params_are_typed_and_coerced_from_strings(client: heron.Client) -> None:
    result = run(tiny, client, params={"n": "4"})
    assert result.output == 6
    assert result.params == {"n": 4}


def test_default_params_and_calling_a_step_directly() -> None:
    assert load(3) == [0, 1, 2]  # outside a pipeline a step is its function
    assert tiny.parameters()["n"].default == 10


def test_subclassed_step_multiple_outputs_and_materializers(client: heron.Client) -> None:
    result = run(scaled, client, params={"factor": 2})
    assert result.output == 12
    out = run(frames, client, executor="local")
    assert out.status == "succeeded"
    assert out.output["ysum"] == 3.0
    np.testing.assert_array_equal(out.output["arr"], np.arange(4))
    materializers = {o.name: o.materializer for o in out.steps["stats"].outputs}
    assert materializers == {"output_0": "npy", "output_1": "json"}
    assert out.steps["frame"].outputs[0].materializer == "parquet"


def test_custom_materializer(client: heron.Client) -> None:
    class Point:
        def __init__(self, x: float, y: float) -> None:
            self.x, self.y = x, y

    class PointMaterializer(heron.Materializer):
        name = "test-point"

        def can_save(self, value: Any) -> bool:
            return isinstance(value, Point)

        def save(self, value: Point, folder: Path) -> None:
            (folder / "point.txt").write_text(f"{value.x},{value.y}")

        def load(self, folder: Path) -> Point:
            x, y = (folder / "point.txt").read_text().split(",")
            return Point(float(x), float(y))

    make = heron.Step(lambda x: Point(x, 2 * x), name="make_point")
    norm = heron.Step(lambda p: (p.x**2 + p.y**2) ** 0.5, name="norm")
    p = Pipeline.from_nodes(
        "points",
        [Node("make_point", make, {"x": 3.0}), Node("norm", norm, {"p": Handle("make_point")})],
        output=Handle("norm"),
    )
    heron.register_materializer(PointMaterializer())
    try:
        result = run(p, client)
    finally:
        from heron._pipelines import _materializers

        _materializers._REGISTERED.clear()
    assert result.steps["make_point"].outputs[0].materializer == "test-point"
    assert result.output == pytest.approx(45**0.5)


# --- tracking, lineage ---------------------------------------------------------------------


def test_pipeline_run_is_a_tracking_run_with_lineage(client: heron.Client) -> None:
    result = run(diamond, client, params={"n": 5}, executor="local")
    assert result.output == {"a": 20, "b": 30}
    tracking = client.get_run(result.run_id)
    assert tracking.experiment == "diamond"
    assert tracking.params == {"n": "5"}
    assert tracking.metrics["combined"] == 50
    assert tracking.status == heron.RunStatus.FINISHED
    paths = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"steps/load/output", "steps/combine/output"} <= paths
    # lineage: load's output digest is what double and square read
    produced = result.steps["load"].outputs[0].digest
    assert result.steps["double"].inputs == {"xs": produced}
    edges = client._call("list_lineage", digest=produced)
    assert {(e.step, e.direction) for e in edges} == {
        ("load", "out"),
        ("double", "in"),
        ("square", "in"),
    }
    assert result.steps["combine"].upstream == ["double", "square"]


# --- caching and why -----------------------------------------------------------------------


def test_cache_reasons_for_params_and_inputs(client: heron.Client) -> None:
    first = run(diamond, client, params={"n": 5})
    assert first.steps["load"].cache_reason == "first run of this step"
    second = run(diamond, client, params={"n": 6})
    assert second.steps["load"].cache_reason == "param 'n' changed: 5 → 6"
    assert second.steps["double"].cache_reason.startswith("input 'xs' changed")
    third = run(diamond, client, params={"n": 6})
    assert all(s.cached for s in third.steps.values())
    assert third.steps["load"].cache_reason == f"cache hit: same key as in run {second.id}"
    assert third.steps["load"].cached_from == second.id


def test_cache_opt_out(client: heron.Client) -> None:
    run(uncached, client)
    again = run(uncached, client)
    assert not again.steps["uncached_load"].cached
    assert "cache=False" in again.steps["uncached_load"].cache_reason
    assert again.steps["total"].cached  # same input digest: downstream still hits


def _project_module(folder: Path, helper_body: str, step_body: str) -> Any:
    import importlib

    (folder / "proj_helpers.py").write_text(f"def helper(x):\n    return {helper_body}\n")
    (folder / "proj_steps.py").write_text(
        textwrap.dedent(
            f"""
            import heron
            import proj_helpers

            @heron.step
            def work(n: int) -> int:
                return {step_body}

            @heron.pipeline
            def proj(n: int = 2):
                return work(n)
            """
        )
    )
    sys.path.insert(0, str(folder))
    try:
        for name in ("proj_helpers", "proj_steps"):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return importlib.import_module("proj_steps")
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def project(tmp_path: Path) -> Any:
    folder = tmp_path / "project"
    folder.mkdir()
    yield lambda helper, body: _project_module(folder, helper, body)
    for name in ("proj_helpers", "proj_steps"):
        sys.modules.pop(name, None)


def test_code_change_of_step_and_of_called_function_invalidates(
    client: heron.Client, project: Any
) -> None:
    v1 = project("x + 1", "proj_helpers.helper(n)")
    assert run(v1.proj, client).output == 3
    assert run(project("x + 1", "proj_helpers.helper(n)").proj, client).steps["work"].cached
    changed_helper = run(project("x + 100", "proj_helpers.helper(n)").proj, client)
    assert changed_helper.output == 102
    assert changed_helper.steps["work"].cache_reason == "code changed"
    changed_step = run(project("x + 100", "proj_helpers.helper(n) * 2").proj, client)
    assert changed_step.output == 204
    assert changed_step.steps["work"].cache_reason == "code changed"


def test_declared_library_version_joins_the_key(
    client: heron.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heron._pipelines import _cache

    step = heron.Step(lambda: 1, name="versioned", libraries=["numpy"])
    p = Pipeline.from_nodes("libs", [Node("versioned", step, {})], output=Handle("versioned"))
    first = run(p, client)
    assert first.steps["versioned"].key_parts["libraries"]["numpy"] == np.__version__
    real = _cache.metadata.version
    monkeypatch.setattr(_cache.metadata, "version", lambda n: "99.0" if n == "numpy" else real(n))
    monkeypatch.setattr(_cache, "installed_version", _cache.installed_version.__wrapped__)
    second = run(p, client)
    assert not second.steps["versioned"].cached
    assert second.steps["versioned"].cache_reason == (
        f"library 'numpy' changed: {np.__version__} → 99.0"
    )


def _blob_file(settings: heron.Settings, digest: str) -> Path:
    return Path(settings.resolved_artifacts) / "blobs" / digest[:2] / digest[2:]


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_cache_hit_with_damaged_outputs_reruns(client: heron.Client, damage: str) -> None:
    from heron._artifacts import ArtifactStore

    first = run(tiny, client, params={"n": 7})
    store = ArtifactStore(client.settings.resolved_artifacts)
    manifest = store.read_manifest(first.steps["load"].outputs[0].digest)
    blob = manifest.files[0].digest
    path = _blob_file(client.settings, blob)
    assert path.exists()
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"[0, 1, 2, 3, 4, 5, 666]")
    second = run(tiny, client, params={"n": 7})
    assert not second.steps["load"].cached
    assert "unusable" in second.steps["load"].cache_reason
    assert second.output == 21
    assert path.read_bytes() == b"[0, 1, 2, 3, 4, 5, 6]"  # stored again, intact


def test_external_file_and_folder_inputs(client: heron.Client, tmp_path: Path) -> None:
    data = tmp_path / "raw.csv"
    data.write_text("a,b\n1,2\n")
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "part-0.txt").write_text("x")
    read = heron.Step(
        lambda path: Path(path).read_text(),
        name="read",
        external=lambda args: [heron.File(args["path"]), heron.Folder(folder)],
    )
    p = Pipeline.from_nodes("ext", [Node("read", read, {"path": str(data)})], Handle("read"))
    assert run(p, client).output == "a,b\n1,2\n"
    assert run(p, client).steps["read"].cached
    data.write_text("a,b\n1,3\n")
    changed = run(p, client)
    assert changed.output == "a,b\n1,3\n"
    assert changed.steps["read"].cache_reason.startswith(f"external input 'file:{data}' changed")
    (folder / "part-1.txt").write_text("y")
    assert run(p, client).steps["read"].cache_reason.startswith("external input 'folder:")


def test_external_url_etag(client: heron.Client) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"etag": '"v1"'}

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            if state["etag"]:
                self.send_header("ETag", state["etag"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/data.csv"
    fetch = heron.Step(lambda: 1, name="fetch", external=[heron.Url(url)])
    p = Pipeline.from_nodes("url", [Node("fetch", fetch, {})], Handle("fetch"))
    try:
        run(p, client)
        assert run(p, client).steps["fetch"].cached
        state["etag"] = '"v2"'
        assert "external input 'url:" in run(p, client).steps["fetch"].cache_reason
        state["etag"] = ""
        no_etag = run(p, client)
        assert not no_etag.steps["fetch"].cached
        assert "neither ETag nor Last-Modified" in no_etag.steps["fetch"].cache_reason
    finally:
        server.shutdown()
        server.server_close()


# --- bad input -----------------------------------------------------------------------------


def _cycle() -> Pipeline:
    a = heron.Step(lambda x: x, name="a")
    b = heron.Step(lambda x: x, name="b")
    c = heron.Step(lambda x: x, name="c")
    return Pipeline.from_nodes(
        "cyclic",
        [
            Node("a", a, {"x": Handle("c")}),
            Node("b", b, {"x": Handle("a")}),
            Node("c", c, {"x": Handle("b")}),
        ],
    )


@heron.pipeline
def missing_input():
    return total()


@heron.pipeline
def unknown_argument():
    return total(xs=[1], ys=[2])


BAD_DEFINITIONS = [
    (lambda: (_cycle(), {}), "the pipeline has a cycle: 'a' → 'b' → 'c' → 'a'"),
    (lambda: (missing_input, {}), "step 'total' is missing input 'xs'"),
    (
        lambda: (
            Pipeline.from_nodes("dangling", [Node("total", total, {"xs": Handle("nowhere")})]),
            {},
        ),
        "uses the output of step 'nowhere', which is not in the pipeline",
    ),
    (lambda: (unknown_argument, {}), "got an unexpected keyword argument 'ys'"),
    (lambda: (tiny, {"m": 3}), "pipeline 'tiny' has no parameter 'm' (parameters: n)"),
    (lambda: (tiny, {"n": "ten"}), "parameter 'n' must be int"),
    (lambda: (retrying, {}), "pipeline 'retrying' needs parameter 'counter'"),
]


@pytest.mark.parametrize(
    ("make", "message"),
    BAD_DEFINITIONS,
    ids=[
        "cycle",
        "missing-input",
        "missing-node",
        "unknown-argument",
        "unknown-param",
        "bad-param-type",
        "missing-param",
    ],
)
def test_bad_definitions_are_refused_before_anything_runs(
    client: heron.Client, make: Any, message: str
) -> None:
    p, params = make()
    with pytest.raises(heron.InvalidInput) as info:
        run(p, client, params=params)
    assert message in info.value.message
    assert client.list_pipeline_runs().items == []


def test_unknown_executor(client: heron.Client) -> None:
    with pytest.raises(heron.InvalidInput, match="unknown executor 'gpu'"):
        run(tiny, client, executor="gpu")


@pytest.mark.parametrize(
    ("p", "step", "error"),
    [
        (raising, "boom", "ValueError: boom: the data is bad"),
        (unserialisable, "generator", "is a builtins.generator, which no materializer stores"),
        (hanging, "hang", "TimeoutError: step 'hang' ran longer than its timeout of 0.5s"),
    ],
    ids=["raises", "non-serialisable-output", "timeout"],
)
def test_failing_step_fails_the_run_and_keeps_earlier_outputs(
    client: heron.Client, p: Pipeline, step: str, error: str
) -> None:
    result = run(p, client, executor="local")
    assert result.status == "failed"
    assert error in result.steps[step].error
    assert result.error.startswith(f"step {step!r} failed: ")
    assert result.output is None
    kept = result.steps["load"]
    assert kept.status == "succeeded" and kept.outputs
    assert client.get_run(result.run_id).status == heron.RunStatus.FAILED
    # the succeeded step's output is stored: the next run takes it from the cache
    assert run(p, client, executor="local").steps["load"].cached


def test_failure_in_process_records_traceback_in_log(client: heron.Client) -> None:
    result = run(raising, client)
    assert result.status == "failed"
    log = client.get_step_log(result.id, "boom")
    assert "Traceback" in log and "boom: the data is bad" in log


# --- retries, logs, resume, cancel, parallelism --------------------------------------------


@pytest.mark.parametrize("executor", ["inprocess", "local"])
def test_retries_with_backoff(client: heron.Client, tmp_path: Path, executor: str) -> None:
    result = run(retrying, client, params={"counter": str(tmp_path / "n")}, executor=executor)
    assert result.status == "succeeded"
    assert result.output == 3
    assert result.steps["flaky"].attempts == 3


@pytest.mark.parametrize("executor", ["inprocess", "local"])
def test_logs_are_captured_and_stored(client: heron.Client, executor: str) -> None:
    result = run(talk, client, params={"n": 7}, executor=executor)
    log = client.get_step_log(result.id, "chatty")
    assert "hello from a step, n=7" in log
    assert "a warning from user code" in log
    with pytest.raises(heron.NotFound, match="has no step 'nope'"):
        client.get_step_log(result.id, "nope")


def test_resume_from_the_failed_step(client: heron.Client, tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.write_text("x")
    failed = run(resumable, client, params={"flag": str(flag)})
    assert failed.status == "failed"
    flag.unlink()
    resumed = run(resumable, client, resume=failed.id)
    assert resumed.status == "succeeded" and resumed.output == 4
    assert resumed.resumed_from == failed.id
    before = resumed.steps["uncached_load"]
    assert before.cached and before.cache_reason == f"reused from run {failed.id} (resumed)"
    assert not resumed.steps["fail_if"].cached


def test_independent_branches_run_in_parallel(client: heron.Client, tmp_path: Path) -> None:
    params = {"a": str(tmp_path / "a"), "b": str(tmp_path / "b")}
    result = run(parallel, client, params=params, executor="local", max_workers=2)
    assert result.status == "succeeded", result.error
    assert result.output == [params["a"], params["b"]]


def test_cancel_kills_running_steps(client: heron.Client) -> None:
    result = run(cancellable, client, executor="local", max_workers=2)
    assert result.status == "cancelled"
    assert result.steps["sleeper"].status == "cancelled"
    # the canceller itself may still be running when the flag is seen: then it is killed too
    assert result.steps["cancel_own_run"].status in ("succeeded", "cancelled")
    # steps after the canceller may finish before the flag is seen; none is left pending
    assert {result.steps["load"].status, result.steps["total"].status} <= {
        "cancelled",
        "succeeded",
    }
    assert client.get_run(result.run_id).status == heron.RunStatus.KILLED
    with pytest.raises(heron.Conflict, match="not running"):
        client.cancel_pipeline_run(result.id)


def test_progress_on_the_terminal(client: heron.Client, capsys: pytest.CaptureFixture[str]) -> None:
    heron.run_pipeline(diamond, client=client, progress=True)
    err = capsys.readouterr().err
    assert "combine" in err and "succeeded" in err


def test_listing_runs(client: heron.Client) -> None:
    first = run(tiny, client)
    second = run(diamond, client)
    assert [r.id for r in client.list_pipeline_runs().items] == [second.id, first.id]
    assert [r.id for r in client.list_pipeline_runs(pipeline="tiny").items] == [first.id]
    assert (
        client.get_pipeline_run(first.id).result["digest"] == first.steps["total"].outputs[0].digest
    )
    with pytest.raises(heron.NotFound):
        client.get_pipeline_run("0" * 32)


def test_step_from_main_travels_by_value(client: heron.Client) -> None:
    """A step defined where it cannot be imported again (a closure) is shipped by value."""
    offset = 5

    def shifted(xs: list[int]) -> list[int]:
        return [x + offset for x in xs]

    shift = heron.Step(shifted)
    p = Pipeline.from_nodes(
        "closure",
        [Node("load", load, {"n": 3}), Node("shifted", shift, {"xs": Handle("load")})],
        Handle("shifted"),
    )
    assert run(p, client, executor="local").output == [5, 6, 7]
