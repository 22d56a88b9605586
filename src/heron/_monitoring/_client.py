"""The client side of monitoring: what runs where the data is, on either transport.

Batch checks profile the data here and send only the window summaries; the model's outputs
on the reference are computed here when a monitor is created (the server never runs a model).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._errors import InvalidInput
from heron._monitoring._entities import CheckOutcome, Monitor, MonitorCheck
from heron._monitoring._summary import reference_outputs, summarize_frame

if TYPE_CHECKING:
    from heron._client import Client
    from heron._models import LoadedModel


def create_monitor(
    client: Client,
    name: str,
    reference: str,
    *,
    model: str | None = None,
    endpoint: str | None = None,
    label_column: str | None = None,
    task: str | None = None,
    reference_outputs_from_model: bool = True,
    **settings: Any,
) -> Monitor:
    from heron._monitoring._service import _DATASET_REF

    predictions = performance = None
    match = _DATASET_REF.match(reference.strip()) if isinstance(reference, str) else None
    # a malformed request is the service's to refuse, with the same error on both transports
    if match and reference_outputs_from_model and bool(model) != bool(endpoint):
        loaded, _, _ = _load_watched_model(client, model, endpoint)
        if loaded is not None:
            version = match["version"]
            frame = client.load_dataset(match["name"], int(version) if version else None)
            if label_column is None:
                label_column = _label_from_signature(loaded, list(frame.columns))
            predictions, performance, _ = reference_outputs(
                frame,
                loaded,
                label_column,
                task,  # type: ignore[arg-type]
            )
    return client._call(
        "create_monitor",
        name=name,
        reference=reference,
        model=model,
        endpoint=endpoint,
        label_column=label_column,
        task=task,
        reference_predictions=predictions,
        reference_performance=performance,
        **settings,
    )


def check_monitor(client: Client, name: str, data: Any) -> CheckOutcome:
    monitor = client.get_monitor(name)
    reference = client.get_monitor_reference(name)
    loaded, model_name, version = _load_watched_model(client, monitor.model, monitor.endpoint)
    reference_frame = None
    ref = monitor.reference
    if monitor.multivariate and ref.kind == "dataset" and ref.dataset is not None:
        reference_frame = client.load_dataset(ref.dataset, ref.version)
        reference_frame = reference_frame[[c for c in monitor.features if c in reference_frame]]
    summaries = summarize_frame(
        data,
        monitor,
        reference,
        model=loaded,
        model_name=model_name,
        model_version=version,
        reference_frame=reference_frame,
    )
    return client._call("record_monitor_check", name=name, windows=summaries)


def write_report(client: Client, name: str, out: str | Path, max_checks: int = 1000) -> Path:
    """Write ``out`` (HTML) and the same content as JSON beside it (``.json``)."""
    from heron._monitoring._report import render_html, report_data

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InvalidInput("the report file must end in .html", field="out")
    monitor = client.get_monitor(name)
    reference = client.get_monitor_reference(name)
    checks: list[MonitorCheck] = []
    token = None
    while len(checks) < max_checks:
        page = client.list_monitor_checks(name, max_results=1000, page_token=token)
        checks.extend(page.items)
        token = page.next_page_token
        if token is None:
            break
    checks = checks[-max_checks:]
    latest = None
    if checks:
        newest = max(checks, key=lambda c: (c.created_at, c.id))
        latest = client.get_monitor_check(name, newest.id)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(monitor, reference, checks, latest), encoding="utf-8")
    data = report_data(monitor, reference, checks, latest)
    out.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return out


def _load_watched_model(
    client: Client, model: str | None, endpoint: str | None
) -> tuple[LoadedModel | None, str | None, int | None]:
    """The model version a monitor watches now (an endpoint's first target)."""
    if model is not None:
        mv = client.resolve_model(f"models:/{model}")
    elif endpoint is not None:
        targets = client.resolve_endpoint(endpoint).targets
        if not targets:
            return None, None, None
        mv = client.get_model_version(targets[0].model, targets[0].version)
    else:
        return None, None, None
    return client.load_model(f"models:/{mv.name}/{mv.version}"), mv.name, mv.version


def _label_from_signature(model: LoadedModel, columns: list[str]) -> str | None:
    signature = model.signature
    if signature is None or not signature.inputs:
        return None
    extra = [c for c in columns if c not in set(signature.column_names)]
    return extra[0] if len(extra) == 1 else None
