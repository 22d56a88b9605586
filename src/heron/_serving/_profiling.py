"""Profiles of serving traffic, built by the log flusher (never on the request path).

The raw prediction log keeps a bounded sample of inputs; this sink folds the inputs and
outputs of the requests within the profile row budget (``ServeOptions.
profile_rows_per_second``: all traffic below it, a steady sample above it) into mergeable
per-minute profiles (``DatasetProfile``) against the reference of each monitor that watches
the endpoint (or its models), and writes one row per minute, model version and reference to
``serving_profiles`` once the minute has passed (and whatever is open when the server
stops), with how many requests were left out (``unprofiled``). Live monitor checks merge
these rows per window, so drift over a window stands on every profiled request, whatever
the raw sample kept.

Why a budget: profiling costs ~0.7 us per row of 30 numbers alone and about five times that
under load, in a thread that shares the interpreter (and the CPU cache) with the requests;
at 100,000 rows a second the flusher fell behind, the queue filled and whole entries were
dropped, log rows and all. A sample of 2,000 rows a second
(the default) is as good for a drift test and keeps every request in the log.

Memory is bounded: one profile per open minute, version and reference (O(bins) each), at
most ``MAX_REFERENCES`` references. Through a Heron server (``HERON_URL``) there is no
direct store, so profiles are not built and monitors read the raw sample.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from heron._client import Client
    from heron._monitoring._entities import MonitorReference
    from heron._serving._log import Entry

log = logging.getLogger("heron.serving")

MINUTE_MS = 60_000
MAX_REFERENCES = 4
REFERENCE_REFRESH_S = 30.0

# (model, version, reference digest, minute start ms)
_Key = tuple[str, int, str, int]


def reference_digest(reference: MonitorReference) -> str:
    """Names the bin edges and categories profiles were built on (both sides agree)."""
    parts = [reference.profile.model_dump(mode="json")]
    if reference.predictions is not None:
        parts.append(reference.predictions.model_dump(mode="json"))
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Window:
    __slots__ = ("predictions", "profile", "requests", "rows", "unprofiled")

    def __init__(self) -> None:
        from heron._profiles import RunningProfile

        self.requests = 0
        self.unprofiled = 0  # requests beyond the profile row budget
        self.rows = 0
        self.profile = RunningProfile()
        self.predictions = RunningProfile()

    def add(self, features: Any, predicted: Any, reference: MonitorReference) -> None:
        """Merge the profiles of one batch of inputs (a DataFrame, or numpy columns by name)
        and of their predictions (an array, one per row)."""
        self.rows += self.profile.add(features, reference.profile)
        if reference.predictions is not None:
            self.predictions.add(_prediction_column(predicted), reference.predictions)


def _prediction_column(predicted: Any) -> Any:
    """The predictions as ``for_predictions`` frames them against a reference: the column
    ``prediction``; numbers and booleans as a numpy column (the same profile, no pandas)."""
    import numpy as np

    if isinstance(predicted, np.ndarray) and predicted.ndim == 1 and predicted.dtype.kind in "biuf":
        return {"prediction": predicted}
    import pandas as pd

    return pd.Series(predicted, name="prediction").to_frame()


class ProfileSink:
    """A ``PredictionSink`` that profiles the inputs and outputs of primary requests within
    the profile row budget (``Entry.profiled``) and counts the others."""

    name = "profiles"

    def __init__(self, client: Client, endpoint: str) -> None:
        from heron._transport import EmbeddedTransport

        transport = client.transport
        self.services = transport.services if isinstance(transport, EmbeddedTransport) else None
        self.client = client
        self.endpoint = endpoint
        self._references: dict[str, MonitorReference] | None = None  # None: not loaded yet
        self._loaded = -1e9
        self._windows: dict[_Key, _Window] = {}

    @property
    def enabled(self) -> bool:
        return self.services is not None

    @property
    def active(self) -> bool:
        """Whether requests are profiled now (a monitor watches, or the references are not
        loaded yet): the request path then keeps what the profiles are built from."""
        return self._references is None or bool(self._references)

    def write(self, endpoint: str, entries: list[Entry]) -> None:
        if self.services is None:
            return
        self._refresh_references()
        if self._references:
            groups: dict[tuple[str, int, int], list[Entry]] = defaultdict(list)
            unprofiled: dict[tuple[str, int, int], int] = defaultdict(int)
            for e in entries:
                if not e.shadow:
                    key = (e.model, e.version, int(e.time * 1000) // MINUTE_MS * MINUTE_MS)
                    if e.profiled:
                        groups[key].append(e)
                    else:
                        unprofiled[key] += 1
            for (model, version, minute), group in groups.items():
                self._fold(model, version, minute, group)
            for (model, version, minute), count in unprofiled.items():
                for digest in self._references:
                    self._window(model, version, digest, minute).unprofiled += count
        self._write(closed_before=int(time.time() * 1000) // MINUTE_MS * MINUTE_MS)

    def close(self) -> None:
        self._write(closed_before=None)

    # --- internals ---------------------------------------------------------------------

    def _refresh_references(self) -> None:
        if time.monotonic() - self._loaded < REFERENCE_REFRESH_S:
            return
        self._loaded = time.monotonic()
        assert self.services is not None
        monitoring = self.services.monitoring
        try:
            served = {t.model for t in self.client.resolve_endpoint(self.endpoint).targets}
            references: dict[str, MonitorReference] = {}
            for monitor in monitoring.list_monitors(max_results=1000).items:
                watched = monitor.endpoint == self.endpoint or (
                    monitor.endpoint is None
                    and (monitor.model or "").partition("@")[0].partition("/")[0] in served
                )
                if watched and len(references) < MAX_REFERENCES:
                    reference = monitoring.get_monitor_reference(monitor.name)
                    references.setdefault(reference_digest(reference), reference)
        except Exception as exc:  # the store may be briefly away: keep the last ones
            log.warning("endpoint %s: monitor references not refreshed: %s", self.endpoint, exc)
            return
        self._references = references

    def _fold(self, model: str, version: int, minute: int, entries: list[Entry]) -> None:
        """Fold one minute of one version's requests into its windows, one profile per
        reference and per form of input (validated arrays, or bodies parsed here)."""
        import pandas as pd

        from heron._monitoring._summary import log_outputs

        for features, outputs, requests in _frames(entries):
            if isinstance(outputs, list):  # as the log holds them: values or class scores
                outputs = log_outputs(pd.Series(outputs, dtype=object)).predictions
            for digest, reference in (self._references or {}).items():
                window = self._window(model, version, digest, minute)
                window.add(features, outputs, reference)
                window.requests += requests

    def _window(self, model: str, version: int, digest: str, minute: int) -> _Window:
        key = (model, version, digest, minute)
        window = self._windows.get(key)
        if window is None:  # not setdefault: a _Window is two profiles to build
            window = self._windows[key] = _Window()
        return window

    def _write(self, closed_before: int | None) -> None:
        """Write the windows of the minutes before ``closed_before`` (all: None). A minute
        whose requests were all beyond the budget is written too, with an empty profile
        (``rows`` 0), so the requests a check reports stay exact."""
        from heron._profiles import DatasetProfile
        from heron._store import _tables as t

        done = [k for k in self._windows if closed_before is None or k[3] < closed_before]
        if not done or self.services is None:
            return
        rows = []
        for key in done:
            window = self._windows.pop(key)
            profile = window.profile.profile()
            if profile is None:
                if not window.unprofiled:
                    continue
                profile = DatasetProfile(rows=0)
            predictions = window.predictions.profile()
            model, version, digest, minute = key
            rows.append(
                {
                    "endpoint": self.endpoint,
                    "model": model,
                    "version": version,
                    "reference": digest,
                    "window_start": _datetime(minute),
                    "requests": window.requests,
                    "unprofiled": window.unprofiled,
                    "rows": window.rows,
                    "profile": profile.model_dump(mode="json"),
                    "predictions": None
                    if predictions is None
                    else predictions.model_dump(mode="json"),
                }
            )
        if rows:
            with self.services.metadata.write() as conn:
                conn.execute(t.serving_profiles.insert(), rows)


def _datetime(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- inputs of a batch as frames ---------------------------------------------------------


def _frames(entries: list[Entry]) -> Iterator[tuple[Any, Any, int]]:
    """(features, predictions one per row, requests) for the entries, at most two frames:
    the validated inputs the request path kept, joined and typed as the signature says
    (numpy columns by name, or one DataFrame; nothing parsed), and the bodies of the others
    parsed here (models whose input has no column names). An entry whose outputs do not
    match its rows, or whose body cannot be read, is left out."""
    typed, others = _by_form(entries)
    if typed:
        predictions = _prediction_array(typed)
        if predictions is None:  # outputs of other shapes: as the log has them
            pairs = _with_answers(typed)
            typed = [e for e, _ in pairs]
            predictions = _flat(a for _, a in pairs)
        if typed:
            features = typed[0].served.inputs_columns([e.prepared for e in typed])
            yield features, predictions, len(typed)
    parsed = _parsed_bodies(_with_answers(others))
    if parsed is not None:
        yield parsed


def _by_form(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """The entries whose validated inputs can be framed, and the others, in one pass
    (``frames_prepared`` is decided when the model is loaded: an attribute to read)."""
    typed, others = [], []
    for e in entries:
        if e.prepared is not None and e.served.frames_prepared:
            typed.append(e)
        else:
            others.append(e)
    return typed, others


def _prediction_array(entries: list[Entry]) -> Any:
    """The entries' predictions as one array, typed as their JSON reads back (int64,
    float64, bool or text), or None unless each is a 1-D array of its rows."""
    import numpy as np

    parts = [e.predictions for e in entries]
    # Checked for the whole batch at once (types, lengths, then the joined array's shape and
    # kind): a test per entry cost more than the rest of this function.
    if set(map(type, parts)) != {np.ndarray}:
        return None
    try:
        if list(map(len, parts)) != [e.rows for e in entries]:
            return None
        joined = np.concatenate(parts)
    except (TypeError, ValueError):  # 0-d arrays, mixed dimensions, text with numbers
        return None
    kind = joined.dtype.kind
    if joined.ndim != 1 or kind not in "biufU":
        return None
    return joined.astype(np.float64 if kind == "f" else np.int64) if kind in "iuf" else joined


def _with_answers(entries: list[Entry]) -> list[tuple[Entry, list[Any]]]:
    """Each entry with its outputs, parsed in one call; those that do not match their rows
    are left out."""
    if not entries:
        return []
    try:
        lists = orjson.loads(b"[" + b",".join(e.outputs for e in entries) + b"]")
    except orjson.JSONDecodeError:  # one bad entry: parse them one by one
        lists = [_loads(e.outputs) for e in entries]
    return [
        (e, a)
        for e, a in zip(entries, lists, strict=True)
        if isinstance(a, list) and len(a) == e.rows
    ]


def _parsed_bodies(pairs: list[tuple[Entry, list[Any]]]) -> tuple[Any, Any, int] | None:
    import pandas as pd

    from heron._errors import HeronError
    from heron._models import unpack_payload

    # Records of all requests become one DataFrame: one per request would cost ~100 us each.
    records: list[Any] = []
    frames, outputs, requests = [], [], 0
    for e, answers in pairs:
        body = e.inputs if e.inputs is not None else e.body
        if body is None:
            continue
        try:
            data = unpack_payload(orjson.loads(body))
        except (HeronError, ValueError, TypeError):
            continue
        if len(data if isinstance(data, list) else data["data"]) != len(answers):
            continue
        if isinstance(data, list):
            records.extend(data)
        else:
            if records:
                frames.append(pd.DataFrame(records))
                records = []
            frames.append(pd.DataFrame(data["data"], columns=data["columns"]))
        outputs.extend(answers)
        requests += 1
    if records:
        frames.append(pd.DataFrame(records))
    if not frames:
        return None
    features = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return features, outputs, requests


def _loads(outputs: bytes) -> Any:
    try:
        return orjson.loads(outputs)
    except orjson.JSONDecodeError:
        return None


def _flat(lists: Iterable[list[Any]]) -> list[Any]:
    return list(itertools.chain.from_iterable(lists))
