"""``heron scheduler``: runs pipelines on cron schedules and on new dataset versions.

Triggers live in the metadata store (``heron pipelines schedule`` / ``trigger``), so any
number of CLI calls can add them while one scheduler process runs them.

Missed runs: a cron trigger fires when its next fire time after the last one has passed.
If the scheduler was down across several fire times, the trigger fires **once** when it
comes back (at start-up) and the schedule continues from then: no backfill of every
missed time. A dataset trigger fires once per check when the dataset's latest version is
newer than the last one it fired on (several new versions → one run, on the latest), and
versions that existed before the trigger was created never fire it.

The trigger is marked fired *before* the pipeline runs, so a pipeline that fails is not
retried in a tight loop; its run (failed or not) is linked from the trigger.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from heron._errors import HeronError
from heron._pipelines._entities import PipelineRun, PipelineTrigger, TriggerKind

if TYPE_CHECKING:
    from heron._client import Client

log = logging.getLogger("heron.scheduler")


class Scheduler:
    def __init__(
        self,
        client: Client,
        *,
        now: Callable[[], datetime] | None = None,
        progress: bool = False,
    ) -> None:
        self.client = client
        self.now = now or (lambda: datetime.now(UTC))
        self.progress = progress

    def due(self, trigger: PipelineTrigger, now: datetime) -> tuple[bool, int | None]:
        """Whether ``trigger`` should fire now, and the dataset version it fires on."""
        if trigger.kind == TriggerKind.CRON:
            from croniter import croniter

            since = trigger.last_fired_at or trigger.created_at
            upcoming = croniter(trigger.spec, since).get_next(datetime)
            return upcoming <= now, None
        latest = self.client.get_dataset(trigger.spec).latest_version
        if latest is None or latest <= (trigger.last_dataset_version or 0):
            return False, None
        return True, latest

    def tick(self) -> list[PipelineRun]:
        """Fire every trigger that is due; the runs started, in trigger order."""
        runs = []
        now = self.now()
        for trigger in self.client._call("list_pipeline_triggers"):
            try:
                fire, version = self.due(trigger, now)
                if fire:
                    runs.append(self.fire(trigger, now, version))
            except HeronError as exc:
                log.error("trigger %s: %s", trigger.name, exc.message)
        return runs

    def fire(self, trigger: PipelineTrigger, now: datetime, version: int | None) -> PipelineRun:
        from heron._pipelines._runner import run_pipeline

        self.client._call(
            "mark_pipeline_trigger", name=trigger.name, fired_at=now, dataset_version=version
        )
        params: dict[str, Any] = dict(trigger.params)
        if version is not None and trigger.dataset_param:
            params[trigger.dataset_param] = version
        log.info("trigger %s fires %s", trigger.name, trigger.target)
        run = run_pipeline(
            trigger.target,
            params,
            executor=trigger.executor,
            client=self.client,
            trigger=f"{trigger.kind.value}:{trigger.name}",
            progress=self.progress,
        )
        self.client._call("mark_pipeline_trigger", name=trigger.name, fired_at=now, run_id=run.id)
        return run

    def serve(self, interval: float = 30.0, stop: threading.Event | None = None) -> None:
        """Check triggers every ``interval`` seconds until ``stop`` is set (or Ctrl-C)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.tick()
            stop.wait(interval)
