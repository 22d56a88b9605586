"""``heron pipelines ...`` and ``heron scheduler``."""

from __future__ import annotations

from typing import Any

import typer

from heron._cli._common import client
from heron._cli._output import JSON_OPTION, console, emit, handle_errors, print_json

pipelines = typer.Typer(
    help="Pipelines: run, inspect, resume and schedule DAGs of cached steps.",
    no_args_is_help=True,
)

PARAM_OPTION = typer.Option(
    None, "--param", "-p", help="A pipeline parameter as key=value (typed by the pipeline)."
)
EXECUTOR_OPTION = typer.Option(
    "inprocess", "--executor", "-x", help="inprocess, local (processes) or ray."
)
RAY_OPTION = typer.Option(None, "--ray-address", help="An existing Ray cluster (default: local).")


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines, name="pipelines")
    app.command("scheduler")(scheduler)


def _params(values: list[str] | None) -> dict[str, Any]:
    from heron._errors import InvalidInput

    params = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {item!r} is not key=value", field="param")
        params[key.strip()] = value
    return params


def _finish(run: Any, as_json: bool) -> None:
    from heron._pipelines._entities import PipelineRunStatus

    if as_json:
        data = run.model_dump(mode="json")
        data["output"] = _jsonable(run.output)
        print_json(data)
    elif run.status == PipelineRunStatus.SUCCEEDED:
        console.print(f"pipeline run [bold]{run.id}[/bold] succeeded; output: {run.output!r}")
    if run.status != PipelineRunStatus.SUCCEEDED:
        from heron._cli._output import err_console

        err_console.print(f"[red]pipeline run {run.id} {run.status.value}:[/red] {run.error}")
        raise typer.Exit(1)


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=repr)


@pipelines.command("run")
@handle_errors
def run(
    target: str = typer.Argument(..., help="module:pipeline or path/to/file.py:pipeline"),
    param: list[str] = PARAM_OPTION,
    executor: str = EXECUTOR_OPTION,
    ray_address: str = RAY_OPTION,
    max_workers: int = typer.Option(None, "--max-workers", help="Local executor processes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a pipeline, showing its steps as they run."""
    from heron._pipelines._runner import run_pipeline

    result = run_pipeline(
        target,
        _params(param),
        executor=executor,
        client=client(),
        ray_address=ray_address,
        max_workers=max_workers,
        progress=not as_json,
    )
    _finish(result, as_json)


@pipelines.command("resume")
@handle_errors
def resume(
    run_id: str = typer.Argument(..., help="A failed or cancelled pipeline run."),
    param: list[str] = PARAM_OPTION,
    executor: str = typer.Option(None, "--executor", "-x", help="Default: the run's executor."),
    ray_address: str = RAY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a failed pipeline run again from the failed step; earlier steps are reused."""
    from heron._errors import InvalidInput
    from heron._pipelines._runner import run_pipeline

    c = client()
    previous = c.get_pipeline_run(run_id)
    if not previous.target:
        raise InvalidInput(
            f"run {run_id} was started from __main__ or a local function; resume it from "
            "Python with heron.run_pipeline(pipeline, resume=...)",
            field="run_id",
        )
    result = run_pipeline(
        previous.target,
        _params(param),
        executor=executor or previous.executor,
        client=c,
        resume=run_id,
        ray_address=ray_address,
        progress=not as_json,
    )
    _finish(result, as_json)


@pipelines.command("runs")
@handle_errors
def runs(
    pipeline: str = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    status: str = typer.Option(None, "--status", help="Only runs with this status."),
    max_results: int = typer.Option(50, "--max", help="How many to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List pipeline runs, newest first."""
    from heron._cli._output import print_table

    page = client().list_pipeline_runs(pipeline, status, max_results=max_results)
    if as_json:
        emit("Pipeline runs", page.items, [], as_json=True)
        return
    rows = [_RunRow.of(r) for r in page.items]
    print_table(
        "Pipeline runs", rows, ["id", "pipeline", "status", "steps", "executor", "created_at"]
    )


class _RunRow:
    @staticmethod
    def of(run: Any) -> Any:
        from pydantic import BaseModel

        class Row(BaseModel):
            id: str
            pipeline: str
            status: str
            steps: str
            executor: str
            created_at: Any

        cached = sum(s.cached for s in run.steps.values())
        done = sum(s.status.value == "succeeded" for s in run.steps.values())
        return Row(
            id=run.id,
            pipeline=run.pipeline,
            status=run.status.value,
            steps=f"{done}/{len(run.steps)} ({cached} cached)",
            executor=run.executor,
            created_at=run.created_at,
        )


@pipelines.command("show")
@handle_errors
def show(run_id: str, as_json: bool = JSON_OPTION) -> None:
    """A pipeline run's DAG with each step's status and why it was (not) cached."""
    from heron._pipelines._progress import dag_tree, steps_table

    found = client().get_pipeline_run(run_id)
    if as_json:
        print_json(found)
        return
    console.print(dag_tree(found))
    console.print(steps_table(found))
    if found.error:
        console.print(f"[red]error:[/red] {found.error}", highlight=False)
    if found.run_id:
        console.print(f"tracking run: {found.run_id}", style="dim")


@pipelines.command("logs")
@handle_errors
def logs(run_id: str, step: str) -> None:
    """The captured output (stdout, stderr, logging) of one step."""
    import sys

    sys.stdout.write(client().get_step_log(run_id, step))


@pipelines.command("cancel")
@handle_errors
def cancel(run_id: str) -> None:
    """Ask a running pipeline run to stop (running steps are killed)."""
    client().cancel_pipeline_run(run_id)
    console.print(f"cancellation of {run_id} requested")


@pipelines.command("schedule")
@handle_errors
def schedule(
    name: str = typer.Argument(..., help="A name for the schedule."),
    target: str = typer.Argument(..., help="module:pipeline"),
    cron: str = typer.Option(..., "--cron", help="When, e.g. '0 3 * * *' (03:00 UTC daily)."),
    param: list[str] = PARAM_OPTION,
    executor: str = EXECUTOR_OPTION,
) -> None:
    """Run a pipeline on a cron schedule (UTC), by `heron scheduler`."""
    from heron._pipelines._entities import TriggerKind

    trigger = client()._call(
        "create_pipeline_trigger",
        name=name,
        target=target,
        kind=TriggerKind.CRON,
        spec=cron,
        params=_params(param),
        executor=executor,
    )
    console.print(f"schedule {trigger.name!r}: {target} at '{cron}'")


@pipelines.command("trigger")
@handle_errors
def trigger(
    name: str = typer.Argument(..., help="A name for the trigger."),
    target: str = typer.Argument(..., help="module:pipeline"),
    dataset: str = typer.Option(..., "--on-dataset", help="Fire on each new version of it."),
    version_param: str = typer.Option(
        None, "--version-param", help="Pipeline parameter that receives the new version."
    ),
    param: list[str] = PARAM_OPTION,
    executor: str = EXECUTOR_OPTION,
) -> None:
    """Run a pipeline when a new version of a dataset arrives, by `heron scheduler`."""
    from heron._pipelines._entities import TriggerKind

    client()._call(
        "create_pipeline_trigger",
        name=name,
        target=target,
        kind=TriggerKind.DATASET,
        spec=dataset,
        params=_params(param),
        executor=executor,
        dataset_param=version_param,
    )
    console.print(f"trigger {name!r}: {target} on new versions of dataset {dataset!r}")


@pipelines.command("triggers")
@handle_errors
def triggers(as_json: bool = JSON_OPTION) -> None:
    """List schedules and dataset triggers."""
    found = client()._call("list_pipeline_triggers")
    emit(
        "Pipeline triggers",
        found,
        ["name", "kind", "spec", "target", "params", "last_fired_at", "last_run_id"],
        as_json=as_json,
    )


@pipelines.command("untrigger")
@handle_errors
def untrigger(name: str) -> None:
    """Delete a schedule or trigger."""
    client()._call("delete_pipeline_trigger", name=name)
    console.print(f"deleted trigger {name!r}")


@handle_errors
def scheduler(
    interval: float = typer.Option(30.0, "--interval", help="Seconds between checks."),
    once: bool = typer.Option(False, "--once", help="Check triggers once and exit."),
) -> None:
    """Run scheduled and dataset-triggered pipelines (long-running).

    A cron schedule missed while the scheduler was down runs once when it starts again
    (no backfill); several new dataset versions since the last check make one run.
    """
    from heron._pipelines._scheduler import Scheduler

    sched = Scheduler(client(), progress=False)
    if once:
        for started in sched.tick():
            console.print(f"{started.pipeline}: run {started.id} {started.status.value}")
        return
    console.print(f"heron scheduler: checking triggers every {interval:g}s (Ctrl-C stops)")
    try:
        sched.serve(interval)
    except KeyboardInterrupt:
        console.print("scheduler stopped")
