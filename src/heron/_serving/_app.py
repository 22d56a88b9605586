"""The prediction server: a lean ASGI app in front of one endpoint.

    POST /predict        {"instances": [...]} | {"dataframe_split": {...}} → predictions
    POST /feedback       {"feedback": [{"request_id", "label"}, ...]} → accepted, unknown
    GET  /health/live    the process answers
    GET  /health/ready   models are loaded and warmed (503 until then, as for /predict,
                         /feedback and /metrics)
    GET  /metrics        Prometheus text format

With auth on (``ServeOptions.auth``; by default when the store has users), /predict,
/feedback and /metrics need ``Authorization: Bearer <token>`` (see ``_auth``); the health
endpoints stay public.

The request path is read body → parse (orjson) → validate → route → predict → answer, then
enqueue the log entry and hand shadow copies to a background thread. It is raw ASGI on
purpose: a framework's routing, dependency injection and response models cost more than the
prediction of a small model. Everything slow (following the endpoint, loading versions,
writing the log, shadow predictions) runs in background threads.

A poller re-resolves the endpoint every ``poll_interval`` seconds (a few indexed reads); when
the revision or an alias target changed, the new versions are loaded and warmed in the
poller's thread, and only then does traffic move (one reference assignment, see
``_routing``). Recently served versions stay loaded, so a rollback switches at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson

from heron._errors import HeronError, InvalidInput
from heron._serving._asgi import (
    GUARDED,
    JSON_HEADERS,
    BodyTooLarge,
    header,
    parse_json,
    parse_payload,
    read_body,
    send_error,
    send_json,
)
from heron._serving._budget import RateBudget
from heron._serving._log import (
    Entry,
    PredictionLogger,
    PredictionSink,
    RequestIds,
    StoreSink,
    entry_size,
)
from heron._serving._metrics import CONTENT_TYPE, ServerMetrics
from heron._serving._model import ServedModel, dump_predictions, load_served_model, rows_of
from heron._serving._options import ServeOptions
from heron._serving._routing import Routing
from heron._threads import name_os_thread, start_thread

if TYPE_CHECKING:
    from heron._client import Client
    from heron._deployments import ResolvedTarget
    from heron._serving._auth import TokenCheck
    from heron._serving._batch import MicroBatcher
    from heron._serving._parquet import ParquetSink
    from heron._serving._profiling import ProfileSink

log = logging.getLogger("heron.serving")


class PredictionServer:
    """One endpoint's prediction server: ``start()``, then serve ``server`` (an ASGI app)."""

    def __init__(
        self,
        client: Client,
        options: ServeOptions,
        *,
        sinks: list[PredictionSink] | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.endpoint = options.endpoint
        self.metrics = ServerMetrics(options.endpoint)
        self.routing: Routing | None = None
        self._extra_sinks = sinks or []
        self._models: collections.OrderedDict[tuple[str, int], ServedModel] = (
            collections.OrderedDict()
        )
        self._batchers: dict[int, MicroBatcher] = {}
        self._in_flight = 0
        self._stop = threading.Event()
        self._lifecycle = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shadow_slots = threading.BoundedSemaphore(options.shadow_capacity)
        self._shadow_pool: ThreadPoolExecutor | None = None
        self.logger: PredictionLogger | None = None
        self.tokens: TokenCheck | None = None
        self._profiles: ProfileSink | None = None
        self._parquet: ParquetSink | None = None
        self._proba_budget: RateBudget | None = None
        self._profile_budget: RateBudget | None = None  # None: every request profiled
        self._request_ids = RequestIds()  # sorted by time: see RequestIds
        self._started = False

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """``load()``, then ``follow()``: ready, and following the endpoint."""
        self.load()
        self.follow()

    def load(self) -> None:
        """Decide on authentication, start the prediction log, then load and warm the
        endpoint's versions: ready when this returns. Everything a request needs exists
        before the models are routed to, so no request is answered unauthenticated or
        unlogged."""
        if self.routing is not None:
            return
        try:
            self.tokens = self._token_check()
            self.logger = self._start_logger()
            self._shadow_pool = ThreadPoolExecutor(
                1,
                thread_name_prefix="heron-shadow",
                initializer=name_os_thread,
                initargs=("heron-shadow",),
            )
            self.refresh()
        except BaseException:
            self.close()
            raise

    def follow(self) -> None:
        """Start what readiness does not wait for: the poller that follows the endpoint and
        the heartbeats (they import the monitoring machinery). ``heron serve`` calls this
        once it listens."""
        with self._lifecycle:
            if self._started or self._stop.is_set():
                return
            self._threads.append(start_thread(self._poll, "heron-poller"))
            from heron._monitoring._resources import start_heartbeats

            self._heartbeat = start_heartbeats(self)
            self._started = True

    def _token_check(self) -> TokenCheck | None:
        from heron._serving._auth import TokenCheck, server_has_users

        auth = self.options.auth
        if auth if auth is not None else server_has_users(self.client):
            return TokenCheck(self.client, self.endpoint)
        log.warning(
            "endpoint %s: authentication is OFF: anyone who can reach this server can "
            "predict and send feedback",
            self.endpoint,
        )
        return None

    def _start_logger(self) -> PredictionLogger | None:
        opts = self.options
        sinks: list[PredictionSink] = []
        if opts.log_predictions:
            sinks.append(StoreSink(self.client, opts.log_retention))
        self._profiles = None
        if opts.log_predictions and opts.profile_traffic:
            from heron._serving._profiling import ProfileSink

            profiles = ProfileSink(self.client, self.endpoint)
            if profiles.enabled:
                sinks.append(profiles)
                self._profiles = profiles
                if opts.profile_rows_per_second:
                    self._profile_budget = RateBudget(opts.profile_rows_per_second)
        if opts.log_predictions and opts.proba_rows_per_second:
            from heron._serving._proba import ProbaSink

            proba = ProbaSink(self.client)
            if proba.enabled:
                sinks.append(proba)
                self._proba_budget = RateBudget(opts.proba_rows_per_second)
        if opts.parquet_log:
            from heron._serving._parquet import ParquetSink

            self._parquet = ParquetSink(
                self.client,
                sample=opts.parquet_sample,
                max_rows=opts.parquet_rows,
                max_seconds=opts.parquet_seconds,
            )
            sinks.append(self._parquet)
        sinks += self._extra_sinks
        if not sinks:
            return None
        logger = PredictionLogger(
            self.endpoint,
            sinks,
            capacity=opts.log_capacity,
            max_bytes=opts.log_max_bytes,
            batch_size=opts.log_batch_size,
            interval=opts.log_interval,
            sample=opts.log_sample,
            input_bytes_per_second=opts.log_input_bytes_per_second,
            on_drop=lambda n: self.metrics.log_dropped.inc(n),
            on_error=lambda n: self.metrics.log_failed.inc(n),
            on_written=self.metrics.sink_written,
        )
        logger.start()
        return logger

    def close(self) -> None:
        with self._lifecycle:  # not while follow() starts threads
            self._stop.set()
        heartbeat = getattr(self, "_heartbeat", None)
        if heartbeat is not None:
            heartbeat.stop()
            self._heartbeat = None
        for thread in self._threads:
            thread.join(timeout=30)
        if self._shadow_pool is not None:
            self._shadow_pool.shutdown(wait=True)
        if self.logger is not None:
            self.logger.close()
        self.metrics.close()
        self._started = False

    @property
    def ready(self) -> bool:
        return self.routing is not None

    # --- following the endpoint --------------------------------------------------------

    def refresh(self) -> bool:
        """Re-resolve the endpoint; load, warm and switch to what changed. True if switched."""
        resolved = self.client.resolve_endpoint(self.endpoint)
        current = self.routing
        if current is not None and current.endpoint.state == resolved.state:
            return False
        wanted = [*resolved.targets, *resolved.shadow]
        models = {(t.model, t.version): self._model(t) for t in wanted}
        routing = Routing.build(resolved, models)
        if self.options.batch_wait_ms > 0:
            self._add_batchers(routing)
        self.routing = routing  # traffic moves here
        self.metrics.revision.set(resolved.revision)
        self._forget_old_models(set(models))
        log.info(
            "endpoint %s: serving revision %d (%s)",
            self.endpoint,
            resolved.revision,
            ", ".join(f"{t.model}/{t.version}:{t.weight}" for t in resolved.targets),
        )
        return True

    def _model(self, target: ResolvedTarget) -> ServedModel:
        key = (target.model, target.version)
        served = self._models.get(key)
        if served is None:
            served = load_served_model(self.client, target)
            self.metrics.model_load.labels(self.endpoint, target.model, str(target.version)).set(
                served.load_seconds
            )
            self._models[key] = served
        self._models.move_to_end(key)
        return served

    def _forget_old_models(self, current: set[tuple[str, int]]) -> None:
        # Requests still running hold their own reference; this only lets memory go later.
        old = [key for key in self._models if key not in current]
        for key in old[: max(0, len(old) - self.options.keep_versions)]:
            served = self._models.pop(key)
            self._batchers.pop(id(served), None)

    def _add_batchers(self, routing: Routing) -> None:
        from heron._serving._batch import MicroBatcher

        for served in routing.variants:
            if id(served) not in self._batchers:
                self._batchers[id(served)] = MicroBatcher(
                    served, self.options.batch_wait_ms / 1000, self.options.max_batch_rows
                )

    def _poll(self) -> None:
        while not self._stop.wait(self.options.poll_interval):
            try:
                self.refresh()
            except Exception as exc:
                # The store or a new version may be briefly unavailable: keep serving.
                log.warning("endpoint %s: refresh failed, still serving: %s", self.endpoint, exc)

    # --- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path, method = scope["path"], scope["method"]
            if path in GUARDED:
                if self.routing is None:
                    # Until then authentication may be undecided and the log not started.
                    await send_error(send, 503, "unavailable", "models are still loading")
                    return
                if self.tokens is not None and not await self._allowed(scope, send):
                    return
            if path == "/predict":
                if method == "POST":
                    await self._predict(scope, receive, send)
                else:
                    await send_error(send, 405, "method_not_allowed", "use POST")
            elif path == "/feedback" and method == "POST":
                await self._feedback(scope, receive, send)
            elif path == "/health/live":
                await send_json(send, 200, b'{"status":"live"}')
            elif path == "/health/ready":
                await self._ready(send)
            elif path == "/metrics":
                await self._metrics(send)
            else:
                await send_error(send, 404, "not_found", f"no route {method} {path}")
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _allowed(self, scope: dict[str, Any], send: Any) -> bool:
        """Whether the request carries a valid token; if not, answer 401/403/429."""
        tokens = self.tokens
        assert tokens is not None
        authorization = header(scope, b"authorization")
        if tokens.cached(authorization):
            return True
        client = scope.get("client")
        source = client[0] if client else "unknown"
        refusal = await asyncio.to_thread(tokens.check, authorization, source, scope["path"])
        if refusal is None:
            return True
        self.metrics.request("", "", refusal.status).inc()
        headers = list(JSON_HEADERS)
        if refusal.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if refusal.retry_after is not None:
            headers.append((b"retry-after", str(refusal.retry_after).encode()))
        body = orjson.dumps(
            {"error": {"code": refusal.code, "message": refusal.message, "field": None}}
        )
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return False

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight.inc()
        self._in_flight += 1
        served: ServedModel | None = None
        status = 200
        try:
            body = await read_body(scope, receive, self.options.max_body_bytes)
            routing = self.routing
            assert routing is not None, "__call__ answers 503 until the models are routed to"
            data = parse_payload(body)
            served = routing.choose(scope, data)
            predictions, prepared = await self._run_model(served, data, body)
            out = dump_predictions(predictions)
            request_id = self._request_ids()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*JSON_HEADERS, (b"x-request-id", request_id.encode())],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b"".join(
                        (
                            b'{"predictions":',
                            out,
                            b',"model_version":"',
                            served.version_label.encode(),
                            b'","request_id":"',
                            request_id.encode(),
                            b'"}',
                        )
                    ),
                }
            )
            if self.logger is not None:
                latency_ms = (time.perf_counter() - started) * 1000
                answer = (out, predictions)
                self._log(routing, served, request_id, latency_ms, data, body, answer, prepared)
            if routing.shadows:
                self._shadow(routing, data, body, request_id)
        except InvalidInput as exc:
            status = 422
            await send_error(send, 422, exc.code, exc.message, exc.field)
        except BodyTooLarge as exc:
            status = 413
            await send_error(send, 413, exc.code, exc.message)
        except Exception:
            status = 500
            log.exception("endpoint %s: prediction failed", self.endpoint)
            await send_error(send, 500, "internal_error", "internal error; see the server log")
        finally:
            self._in_flight -= 1
            metrics.in_flight.dec()
            if served is not None:
                metrics.request(served.model, served.version_label, status).inc()
            else:
                metrics.request("", "", status).inc()
            metrics.latency.observe(time.perf_counter() - started)

    def _log(
        self,
        routing: Routing,
        served: ServedModel,
        request_id: str,
        latency_ms: float,
        data: Any,
        body: bytes,
        answer: tuple[bytes, Any],
        prepared: Any,
    ) -> None:
        """Enqueue one answered request (``answer``: the predictions as JSON and as the model
        returned them): references only, the flusher does the work. The validated input and
        the predictions are kept for monitor profiles (when a monitor watches) and for class
        probabilities, each within its row budget; the body only where profiles need it and
        the input cannot be profiled, or where the Parquet log samples the request."""
        logger = self.logger
        assert logger is not None
        rows = rows_of(data)
        now = time.monotonic()  # one clock read for both budgets
        inputs = logger.keep_inputs(body, now)
        profiles = self._profiles
        profiled = profiles is not None and profiles.active
        if profiled and self._profile_budget is not None:
            profiled = self._profile_budget.take(rows, now)
        budget = self._proba_budget
        proba = budget is not None and served.has_proba and budget.take(rows, now)
        framed = served.frames_prepared
        keep = proba or (profiled and framed)
        # The body, unless kept as inputs, where profiles or the Parquet log's sample need it.
        body_needed = (profiled and not framed) or (
            self._parquet is not None and self._parquet_takes(request_id, body)
        )
        out, predictions = answer
        kept_body = body if body_needed and inputs is None else None
        if not keep:
            prepared = predictions = None
        entry = Entry(
            request_id,
            routing.revision,
            served.model,
            served.version,
            False,
            time.time(),
            latency_ms,
            rows,
            inputs,
            out,
            kept_body,
            prepared,
            served if keep else None,
            proba,
            predictions,
            profiled,
        )
        logger.put(entry, entry_size(out, inputs, kept_body, prepared))

    def _parquet_takes(self, request_id: str, body: bytes) -> bool:
        """Whether the Parquet log samples this request (bodies over the raw log's size
        limit stay out, as there)."""
        parquet, logger = self._parquet, self.logger
        return (
            parquet is not None
            and logger is not None
            and len(body) <= logger.max_input_bytes
            and parquet.takes(request_id)
        )

    async def _run_model(self, served: ServedModel, data: Any, body: bytes) -> tuple[Any, Any]:
        try:
            prepared = served.prepare(data, body)
        except (ValueError, TypeError, KeyError) as exc:
            # Validation is meant to catch everything; whatever slips through is still input.
            raise InvalidInput(f"the input could not be read: {exc}") from exc
        batcher = self._batchers.get(id(served)) if self._batchers else None
        if batcher is not None and self._in_flight > 1:
            return await batcher.predict(prepared, len(prepared)), prepared
        return served.predict_prepared(prepared), prepared

    def _shadow(self, routing: Routing, data: Any, body: bytes, request_id: str) -> None:
        if self._shadow_pool is None or not self._shadow_slots.acquire(blocking=False):
            self.metrics.shadow_dropped.inc()
            return
        self._shadow_pool.submit(self._run_shadows, routing, data, body, request_id)

    def _run_shadows(self, routing: Routing, data: Any, body: bytes, request_id: str) -> None:
        try:
            for served in routing.shadows:
                started = time.perf_counter()
                try:
                    out = dump_predictions(served.predict(data))
                except Exception as exc:
                    log.warning("shadow %s/%s failed: %s", served.model, served.version, exc)
                    continue
                if self.logger is not None:
                    self.logger.put(
                        Entry(
                            request_id,
                            routing.revision,
                            served.model,
                            served.version,
                            True,
                            time.time(),
                            (time.perf_counter() - started) * 1000,
                            rows_of(data),
                            None,  # the primary record of this request id has the inputs
                            out,
                        )
                    )
        finally:
            self._shadow_slots.release()

    async def _feedback(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            payload = parse_json(await read_body(scope, receive, self.options.max_body_bytes))
            items = payload.get("feedback") if isinstance(payload, dict) else None
            if not isinstance(items, list) or not items:
                raise InvalidInput(
                    'the body needs "feedback": [{"request_id", "label"}, ...]', field="feedback"
                )
            result = await asyncio.to_thread(self._store_feedback, items)
            await send_json(send, 200, orjson.dumps(result.model_dump(mode="json")))
        except BodyTooLarge as exc:
            await send_error(send, 413, exc.code, exc.message)
        except HeronError as exc:
            await send_error(send, exc.status_code, exc.code, exc.message, exc.field)
        except Exception:
            log.exception("endpoint %s: feedback failed", self.endpoint)
            await send_error(send, 500, "internal_error", "internal error; see the server log")

    def _store_feedback(self, items: list[Any]) -> Any:
        if self.logger is not None:
            self.logger.flush()  # requests answered a moment ago must be known
        return self.client.log_feedback(self.endpoint, items)

    async def _ready(self, send: Any) -> None:
        routing = self.routing
        if routing is None:
            await send_json(send, 503, b'{"status":"loading"}')
            return
        body = {
            "status": "ready",
            "endpoint": self.endpoint,
            "revision": routing.revision,
            "versions": [f"{m.model}/{m.version}" for m in routing.variants],
            "shadow": [f"{m.model}/{m.version}" for m in routing.shadows],
        }
        await send_json(send, 200, orjson.dumps(body))

    async def _metrics(self, send: Any) -> None:
        if self.logger is not None:
            self.metrics.log_queue.set(len(self.logger))
        body = self.metrics.render()
        headers = [(b"content-type", CONTENT_TYPE.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.start)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.close)
                await send({"type": "lifespan.shutdown.complete"})
                return
