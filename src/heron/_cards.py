"""Model cards: purpose, hyperparameters, training data, metrics and limitations, as Markdown."""

from __future__ import annotations

from heron._entities import Lineage, ModelVersion


def render_model_card(mv: ModelVersion, lineage: Lineage) -> str:
    card = mv.card
    run = lineage.run
    lines = [f"# Model card: {mv.name} version {mv.version}", ""]
    lines += [card.description or "_No description given._", ""]
    lines += _section("Intended use", card.intended_use)
    lines += _section("Limitations", card.limitations)
    lines += _section("Ethical considerations", card.ethical_considerations)
    lines += ["## Model", "", f"- Flavor: `{mv.flavor}`", f"- Status: {mv.status.value}"]
    lines += [f"- Aliases: {', '.join(mv.aliases) or 'none'}"]
    lines += [f"- Registered by {mv.created_by or 'unknown'} at {mv.created_at:%Y-%m-%d %H:%M} UTC"]
    lines += [f"- Artifact digest: `{mv.source}`", ""]
    if mv.signature:
        lines += ["### Inputs", "", "| column | type |", "|---|---|"]
        lines += [f"| {c['name']} | {c['type']} |" for c in mv.signature.get("inputs", [])]
        lines.append("")
    lines += ["## Training data", ""]
    if lineage.datasets:
        lines += ["| dataset | version | rows | columns | digest |", "|---|---|---|---|---|"]
        lines += [
            f"| {d.name} | {d.version} | {d.row_count} | {len(d.columns)} | `{d.digest[:12]}` |"
            for d in lineage.datasets
        ]
    else:
        lines.append("_No dataset recorded._")
    lines.append("")
    lines += _table("Hyperparameters", run.params if run else {})
    lines += _table("Metrics", {k: f"{v:.6g}" for k, v in (run.metrics if run else {}).items()})
    lines += ["## Lineage", ""]
    lines.append(f"- Run: `{run.id}` in experiment {run.experiment!r}" if run else "- Run: none")
    dirty = " (uncommitted changes)" if lineage.git_dirty else ""
    lines.append(
        f"- Code: git commit `{lineage.git_commit}`{dirty}"
        if lineage.git_commit
        else "- Code: unknown"
    )
    if lineage.pipeline_run_id:
        lines.append(f"- Pipeline run: `{lineage.pipeline_run_id}`")
    return "\n".join(lines) + "\n"


def _section(title: str, text: str) -> list[str]:
    return [f"## {title}", "", text, ""] if text else []


def _table(title: str, values: dict[str, str]) -> list[str]:
    if not values:
        return [f"## {title}", "", "_None recorded._", ""]
    rows = [f"| {k} | {v} |" for k, v in sorted(values.items())]
    return [f"## {title}", "", "| name | value |", "|---|---|", *rows, ""]
