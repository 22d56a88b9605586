"""A monitor's report: one self-contained HTML file (inline SVG charts, no scripts, no
network) and the same content as JSON.

Sections: the latest window's verdicts per column (test, statistic, threshold, drifted),
reference vs current distributions per column (from the two profiles' histograms), drift per
column over time (a heat map of statistic / threshold; outlined cells drifted), drift share
over time, and performance over time (realized solid, estimated dashed).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from heron._monitoring._entities import Monitor, MonitorCheck, MonitorReference
from heron._profiles import CategoricalProfile, DatasetProfile, NumericProfile

MAX_DISTRIBUTIONS = 40
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;text-align:left;
border-bottom:1px solid #eee}.drifted{color:#b00020;font-weight:600}.ok{color:#2e7d32}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.card{border:1px solid #eee;padding:.5rem}
.muted{color:#777;font-size:.8rem}svg text{font-size:10px;fill:#444}
"""


def report_data(
    monitor: Monitor,
    reference: MonitorReference,
    checks: list[MonitorCheck],
    latest: MonitorCheck | None,
) -> dict[str, Any]:
    """The report's content as plain data (what the JSON file holds)."""
    return {
        "monitor": monitor.model_dump(mode="json"),
        "reference_rows": reference.profile.rows,
        "latest": None if latest is None else latest.model_dump(mode="json", exclude={"profile"}),
        "history": [
            {
                "id": c.id,
                "window_start": c.window_start.isoformat(),
                "model": c.model,
                "version": c.version,
                "rows": c.rows,
                "drift_share": c.drift_share,
                "drifted": c.drifted,
                "drifted_columns": c.drifted_names(),
                "performance": None if c.performance is None else c.performance.metrics,
                "estimated_performance": None
                if c.estimated_performance is None
                else c.estimated_performance.metrics,
            }
            for c in checks
        ],
    }


def render_html(
    monitor: Monitor,
    reference: MonitorReference,
    checks: list[MonitorCheck],
    latest: MonitorCheck | None,
) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Heron monitor {_e(monitor.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Monitor {_e(monitor.name)}</h1>",
        _summary(monitor, latest, len(checks)),
    ]
    if latest is not None:
        parts += ["<h2>Latest window: drift per column</h2>", _verdict_table(latest)]
        if latest.profile is not None:
            parts += [
                "<h2>Reference vs current distributions</h2>",
                _distributions(reference.profile, latest),
            ]
        parts += ["<h2>Data quality</h2>", _quality_table(latest)]
    if checks:
        parts += [
            "<h2>Drift per column over time</h2>",
            _heatmap(checks),
            "<h2>Drift share over time</h2>",
            _line_chart(
                [("drift share", [c.drift_share for c in checks], False)],
                [c.window_start for c in checks],
                y_max=1.0,
                threshold=monitor.drift.drift_share,
            ),
            "<h2>Performance over time</h2>",
            _performance(checks),
        ]
    else:
        parts.append("<p class='muted'>No checks yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --- sections ----------------------------------------------------------------------------------


def _summary(monitor: Monitor, latest: MonitorCheck | None, count: int) -> str:
    ref = monitor.reference
    source = (
        f"dataset {ref.dataset} version {ref.version}"
        if ref.kind == "dataset"
        else f"window of check {ref.check_id}"
    )
    rows = [
        ("watches", monitor.model or monitor.endpoint or "data only"),
        ("reference", f"{source} ({ref.rows} rows)"),
        ("window", str(monitor.window)),
        ("checks", str(count)),
    ]
    if latest is not None:
        verdict = "drifted" if latest.drifted else "no drift"
        rows += [
            ("latest window", f"{latest.window_start:%Y-%m-%d %H:%M} · {latest.rows} rows"),
            (
                "drift share",
                f"{latest.drift_share:.0%} of {latest.tested_columns} columns "
                f"(threshold {latest.share_threshold:.0%}): {verdict}",
            ),
        ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _verdict_table(check: MonitorCheck) -> str:
    head = "<tr><th>column</th><th>test</th><th>statistic</th><th>threshold</th>"
    head += "<th>p-value</th><th>drifted</th></tr>"
    rows = []
    for c in sorted(check.columns, key=lambda c: (not c.drifted, -c.statistic / c.threshold)):
        cls = "drifted" if c.drifted else "ok"
        p = "" if c.p_value is None else f"{c.p_value:.3g}"
        rows.append(
            f"<tr><td>{_e(c.column)}</td><td>{_e(c.test)}</td><td>{c.statistic:.4f}</td>"
            f"<td>{c.threshold:g}</td><td>{p}</td><td class='{cls}'>{str(c.drifted).lower()}"
            "</td></tr>"
        )
    for column, reason in check.skipped.items():
        rows.append(
            f"<tr><td>{_e(column)}</td><td colspan='5' class='muted'>{_e(reason)}</td></tr>"
        )
    if check.prediction_drift is not None:
        for c in check.prediction_drift.columns:
            cls = "drifted" if c.drifted else "ok"
            rows.append(
                f"<tr><td><i>{_e(c.column)} (model output)</i></td><td>{_e(c.test)}</td>"
                f"<td>{c.statistic:.4f}</td><td>{c.threshold:g}</td><td></td>"
                f"<td class='{cls}'>{str(c.drifted).lower()}</td></tr>"
            )
    notes = "".join(f"<li>{_e(n)}</li>" for n in check.notes)
    return f"<table>{head}{''.join(rows)}</table>" + (
        f"<ul class='muted'>{notes}</ul>" if notes else ""
    )


def _quality_table(check: MonitorCheck) -> str:
    failing = [q for q in check.quality.checks if q.verdict != "pass"]
    if not failing:
        return f"<p class='ok'>All {len(check.quality.checks)} checks pass.</p>"
    rows = "".join(
        f"<tr><td>{_e(q.check)}</td><td>{_e(q.column or '')}</td>"
        f"<td class='{'drifted' if q.verdict == 'fail' else ''}'>{q.verdict}</td>"
        f"<td>{_e(q.message)}</td></tr>"
        for q in failing
    )
    return f"<table><tr><th>check</th><th>column</th><th>verdict</th><th></th></tr>{rows}</table>"


def _distributions(reference: DatasetProfile, check: MonitorCheck) -> str:
    assert check.profile is not None
    by_name = {c.column: c for c in check.columns}
    names = sorted(
        (n for n in reference.columns if n in check.profile.columns),
        key=lambda n: (not (by_name.get(n) and by_name[n].drifted), n),
    )
    cards = []
    for name in names[:MAX_DISTRIBUTIONS]:
        ref, cur = reference.columns[name], check.profile.columns[name]
        labels, ref_counts, cur_counts = _bars(ref, cur)
        drift = by_name.get(name)
        title = _e(name) + (
            " · <span class='drifted'>drifted</span>" if drift and drift.drifted else ""
        )
        chart = _bar_chart(labels, ref_counts, cur_counts)
        cards.append(f"<div class='card'><div>{title}</div>{chart}</div>")
    more = len(names) - MAX_DISTRIBUTIONS
    legend = (
        f"<p class='muted'><span style='color:{PALETTE[0]}'>■</span> reference "
        f"<span style='color:{PALETTE[1]}'>■</span> current</p>"
    )
    tail = f"<p class='muted'>{more} more columns in the JSON.</p>" if more > 0 else ""
    return legend + f"<div class='grid'>{''.join(cards)}</div>" + tail


def _bars(ref: Any, cur: Any) -> tuple[list[str], list[float], list[float]]:
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        edges = ref.edges
        labels = ["below"] + [f"{a:.3g}" for a in edges[:-1]] + ["above"]
        return labels, list(ref.histogram()), list(cur.histogram())
    assert isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile)
    return [*ref.categories, "other"], list(ref.histogram()), list(cur.histogram())


def _bar_chart(labels: list[str], ref: list[float], cur: list[float]) -> str:
    width, height, pad = 260, 110, 14
    ref_total, cur_total = sum(ref) or 1, sum(cur) or 1
    shares = [(r / ref_total, c / cur_total) for r, c in zip(ref, cur, strict=True)]
    top = max((max(pair) for pair in shares), default=1) or 1
    slot = (width - 2 * pad) / max(len(shares), 1)
    bars = []
    for i, (r, c) in enumerate(shares):
        x = pad + i * slot
        for j, (share, color) in enumerate(((r, PALETTE[0]), (c, PALETTE[1]))):
            h = (height - 2 * pad) * share / top
            bars.append(
                f"<rect x='{x + j * slot / 2:.1f}' y='{height - pad - h:.1f}' "
                f"width='{max(slot / 2 - 0.5, 0.5):.1f}' height='{h:.1f}' fill='{color}'>"
                f"<title>{_e(labels[i])}: reference {r:.1%}, current {c:.1%}</title></rect>"
            )
    axis = (
        f"<text x='{pad}' y='{height - 2}'>{_e(labels[0])}</text>"
        f"<text x='{width - pad}' y='{height - 2}' text-anchor='end'>{_e(labels[-1])}</text>"
    )
    return f"<svg width='{width}' height='{height}'>{''.join(bars)}{axis}</svg>"


def _heatmap(checks: list[MonitorCheck]) -> str:
    columns = sorted({c.column for check in checks for c in check.columns})
    if not columns:
        return "<p class='muted'>No columns were tested.</p>"
    cell, left, top = 14, 150, 16
    width = left + cell * len(checks) + 10
    height = top + cell * len(columns) + 20
    parts = []
    for row, name in enumerate(columns):
        y = top + row * cell
        parts.append(f"<text x='{left - 4}' y='{y + 10}' text-anchor='end'>{_e(name[:24])}</text>")
        for col, check in enumerate(checks):
            result = next((c for c in check.columns if c.column == name), None)
            if result is None:
                continue
            ratio = min(result.statistic / result.threshold, 2.0) if result.threshold else 0.0
            shade = int(255 - 200 * ratio / 2)
            stroke = " stroke='#b00020' stroke-width='2'" if result.drifted else ""
            parts.append(
                f"<rect x='{left + col * cell}' y='{y}' width='{cell - 1}' height='{cell - 1}' "
                f"fill='rgb(255,{shade},{shade})'{stroke}><title>{_e(name)} · "
                f"{check.window_start:%Y-%m-%d %H:%M} · {result.test} {result.statistic:.4f} "
                f"(threshold {result.threshold:g})</title></rect>"
            )
    first, last = checks[0].window_start, checks[-1].window_start
    parts.append(f"<text x='{left}' y='{height - 4}'>{first:%Y-%m-%d %H:%M}</text>")
    if len(checks) > 1:
        end = f"{last:%Y-%m-%d %H:%M}"
        parts.append(f"<text x='{width - 10}' y='{height - 4}' text-anchor='end'>{end}</text>")
    caption = "<p class='muted'>Shade: statistic / threshold (darker is more drift, capped at "
    caption += "2); outlined: drifted.</p>"
    return f"<svg width='{width}' height='{height}'>{''.join(parts)}</svg>{caption}"


def _performance(checks: list[MonitorCheck]) -> str:
    keys = sorted({(c.model, c.version) for c in checks}, key=str)
    charts = []
    for model, version in keys:
        subset = [c for c in checks if (c.model, c.version) == (model, version)]
        names = sorted(
            {
                n
                for c in subset
                for p in (c.performance, c.estimated_performance)
                if p
                for n in p.metrics
            }
        )
        series = []
        for name in names:
            realized = [_metric(c.performance, name) for c in subset]
            estimated = [_metric(c.estimated_performance, name) for c in subset]
            if any(v is not None for v in realized):
                series.append((name, realized, False))
            if any(v is not None for v in estimated):
                series.append((f"{name} (estimated)", estimated, True))
        if not series:
            continue
        title = f"{model}/{version}" if model else "all traffic"
        charts.append(
            f"<div class='card'><div>{_e(title)}</div>"
            + _line_chart(series, [c.window_start for c in subset])
            + "</div>"
        )
    if not charts:
        return "<p class='muted'>No performance figures yet (no labels, no probabilities).</p>"
    return f"<div class='grid'>{''.join(charts)}</div>"


def _metric(performance: Any, name: str) -> float | None:
    if performance is None:
        return None
    value = performance.metrics.get(name)
    return None if value is None else float(value)


def _line_chart(
    series: list[tuple[str, list[float | None], bool]],
    times: list[datetime],
    *,
    y_max: float | None = None,
    threshold: float | None = None,
) -> str:
    width, height, left, pad = 520, 180, 40, 16
    values = [v for _, vs, _ in series for v in vs if v is not None]
    high = y_max if y_max is not None else max([*values, threshold or 0.0, 1e-9])
    low = min([0.0, *values])
    span = (high - low) or 1.0
    n = max(len(times), 1)

    def xy(i: int, v: float) -> str:
        x = left + (width - left - pad) * (i / (n - 1) if n > 1 else 0.5)
        y = height - pad - (height - 2 * pad) * (v - low) / span
        return f"{x:.1f},{y:.1f}"

    parts = [
        f"<line x1='{left}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' "
        "stroke='#999'/>",
        f"<text x='{left - 4}' y='{pad}' text-anchor='end'>{high:.3g}</text>",
        f"<text x='{left - 4}' y='{height - pad}' text-anchor='end'>{low:.3g}</text>",
    ]
    if threshold is not None:
        y = height - pad - (height - 2 * pad) * (threshold - low) / span
        parts.append(
            f"<line x1='{left}' y1='{y:.1f}' x2='{width - pad}' y2='{y:.1f}' stroke='#b00020' "
            "stroke-dasharray='2,3'/>"
        )
    legend = []
    colors: dict[str, str] = {}
    for label, vs, dashed in series:
        base = label.removesuffix(" (estimated)")
        color = colors.setdefault(base, PALETTE[len(colors) % len(PALETTE)])
        points = " ".join(xy(i, v) for i, v in enumerate(vs) if v is not None)
        dash = " stroke-dasharray='5,4'" if dashed else ""
        parts.append(f"<polyline points='{points}' fill='none' stroke='{color}'{dash}/>")
        for i, v in enumerate(vs):
            if v is not None:
                x, y = xy(i, v).split(",")
                parts.append(
                    f"<circle cx='{x}' cy='{y}' r='2.5' fill='{color}'><title>{_e(label)} "
                    f"{times[i]:%Y-%m-%d %H:%M}: {v:.4g}</title></circle>"
                )
        legend.append(f"<span style='color:{color}'>{'┄' if dashed else '━'} {_e(label)}</span>")
    if times:
        parts.append(f"<text x='{left}' y='{height - 2}'>{times[0]:%Y-%m-%d %H:%M}</text>")
    svg = f"<svg width='{width}' height='{height}'>{''.join(parts)}</svg>"
    return svg + f"<div class='muted'>{' · '.join(legend)}</div>"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
