"""Adaptive micro-batching: requests for one version arriving within ``wait`` seconds are
predicted in one call and the answers split back.

Adaptive means a lone request never waits: batching starts only when other requests are in
flight, which is exactly when a batch can form. Each request is validated on its own first,
so a bad request gets its own 422 and never spoils the batch it would have joined.
"""

from __future__ import annotations

import asyncio
from typing import Any

from heron._serving._model import ServedModel, concat_prepared


class MicroBatcher:
    def __init__(self, served: ServedModel, wait: float, max_rows: int) -> None:
        self.served = served
        self.wait = wait
        self.max_rows = max_rows
        self._pending: list[tuple[Any, int, asyncio.Future[Any]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None

    async def predict(self, prepared: Any, rows: int) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((prepared, rows, future))
        self._rows += rows
        if self._rows >= self.max_rows:
            self._run()
        elif self._timer is None:
            self._timer = loop.call_later(self.wait, self._run)
        return await future

    def _run(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        try:
            if len(batch) == 1:
                results = [self.served.predict_prepared(batch[0][0])]
            else:
                joined = self.served.predict_prepared(concat_prepared([p for p, _, _ in batch]))
                results, start = [], 0
                for _, rows, _ in batch:
                    results.append(joined[start : start + rows])
                    start += rows
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
