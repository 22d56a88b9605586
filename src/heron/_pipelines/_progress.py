"""Live progress of a pipeline run on the terminal (Rich), and the DAG view of a run."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from heron._pipelines._entities import PipelineRun, StepRun, StepStatus

_STYLE = {
    StepStatus.PENDING: ("·", "dim", "pending"),
    StepStatus.RUNNING: ("●", "yellow", "running"),
    StepStatus.SUCCEEDED: ("✓", "green", "done"),
    StepStatus.FAILED: ("✗", "red", "failed"),
    StepStatus.SKIPPED: ("-", "dim", "skipped"),
    StepStatus.CANCELLED: ("✗", "magenta", "cancelled"),
}


def status_text(step: StepRun) -> Text:
    if step.status == StepStatus.SUCCEEDED and step.cached:
        return Text("⚡ cached", style="cyan")
    mark, style, word = _STYLE[step.status]
    if step.status == StepStatus.RUNNING and step.attempts > 1:
        word += f" (attempt {step.attempts})"
    return Text(f"{mark} {word}", style=style)


def _seconds(step: StepRun) -> str:
    return f"{step.duration:.2f}s" if step.duration is not None and not step.cached else ""


def steps_table(run: PipelineRun) -> Table:
    title = f"{run.pipeline} · {run.id[:12]} · {run.status.value}"
    table = Table(title=title, title_justify="left")
    for column in ("step", "status", "time", "cache"):
        table.add_column(column)
    for step in run.steps.values():
        table.add_row(step.name, status_text(step), _seconds(step), step.cache_reason)
    counts: dict[str, int] = {}
    for step in run.steps.values():
        word = "cached" if step.cached else step.status.value
        counts[word] = counts.get(word, 0) + 1
    table.caption = " · ".join(f"{n} {w}" for w, n in counts.items())
    return table


def dag_tree(run: PipelineRun) -> Tree:
    """The run's DAG: each step under the steps it reads from, with status and cache reason."""
    root = Tree(Text(f"{run.pipeline} {run.id} ({run.status.value})", style="bold"))
    children: dict[str, list[str]] = {name: [] for name in run.steps}
    roots = []
    for step in run.steps.values():
        if step.upstream:
            children[step.upstream[-1]].append(step.name)
        else:
            roots.append(step.name)

    def label(step: StepRun) -> Text:
        text = Text(step.name, style="bold")
        text.append("  ")
        text.append_text(status_text(step))
        if len(step.upstream) > 1:
            text.append(f"  ← {', '.join(step.upstream)}", style="dim")
        if _seconds(step):
            text.append(f"  {_seconds(step)}", style="dim")
        if step.cache_reason:
            text.append(f"\n{step.cache_reason}", style="dim italic")
        if step.error and step.status != StepStatus.SUCCEEDED:
            text.append(f"\n{step.error}", style="red")
        return text

    def add(parent: Any, name: str) -> None:
        branch = parent.add(label(run.steps[name]))
        for child in children[name]:
            add(branch, child)

    for name in roots:
        add(root, name)
    return root


class ProgressView:
    """A table of steps refreshed as they change; nothing when not enabled."""

    def __init__(self, run: PipelineRun, enabled: bool | None = None) -> None:
        self.run = run
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._live: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.enabled:
            # No auto-refresh thread: a forked step must not inherit a held console lock.
            self._live = Live(
                steps_table(self.run),
                console=Console(stderr=True),
                auto_refresh=False,
                transient=False,
            )
            self._live.start()
        return self

    def update(self, step: StepRun) -> None:
        if self._live is None:
            return
        self.run.steps[step.name] = step
        self._live.update(steps_table(self.run), refresh=True)

    def finish(self, run: PipelineRun) -> None:
        self.run = run
        if self._live is not None:
            self._live.update(steps_table(run), refresh=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
