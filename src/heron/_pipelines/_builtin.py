"""Built-in steps (``heron.steps``): shift-left checks and the train → gate → register loop.

    load_dataset      a dataset version (latest by default) as a DataFrame; the version's
                      digest is an external input, so a new version invalidates the cache
    validate_data     data-quality checks against a reference dataset's profile (schema,
                      types, missing rate, ranges, new categories), failing the run with a
                      readable report; passes the data through
    split_holdout     train/holdout split; the holdout carries the data digest and the split
                      settings (``DataFrame.attrs``, kept in Parquet)
    train_sklearn     fit any scikit-learn estimator named by its import path
    evaluate_sklearn  score a model on the holdout; metrics go to the pipeline's run
    validate_model    the gate: the candidate must beat the current champion on the same
                      holdout by ``margin`` on ``metric`` and not regress on guard metrics;
                      the verdict holds both figures and is stored as the step's output
    register_model    register the model (lineage: tracking run, pipeline run, datasets)
                      with a model card, when the verdict passed

They are ordinary steps built on the same hooks as users' steps (``current_step()`` for the
client and metrics). The monitoring code they reuse is ``heron._profiles`` and
``heron._quality.quality_report``.
"""

from __future__ import annotations

import importlib
from typing import Any

from heron._errors import InvalidInput, NotFound
from heron._pipelines._external import DatasetSource
from heron._pipelines._step import current_step, step


class DataValidationFailed(InvalidInput):
    """The data failed checks against its reference; the message is the report."""


# (sklearn.metrics function, keyword arguments, higher is better, needs probabilities)
_METRICS: dict[str, tuple[str, dict[str, Any], bool, bool]] = {
    "accuracy": ("accuracy_score", {}, True, False),
    "balanced_accuracy": ("balanced_accuracy_score", {}, True, False),
    "f1": ("f1_score", {"average": "macro"}, True, False),
    "precision": ("precision_score", {"average": "macro", "zero_division": 0}, True, False),
    "recall": ("recall_score", {"average": "macro", "zero_division": 0}, True, False),
    "roc_auc": ("roc_auc_score", {}, True, True),
    "log_loss": ("log_loss", {}, False, True),
    "r2": ("r2_score", {}, True, False),
    "mae": ("mean_absolute_error", {}, False, False),
    "mse": ("mean_squared_error", {}, False, False),
}


@step(external=lambda args: [DatasetSource(args["name"], args.get("version"))])
def load_dataset(name: str, version: int | None = None) -> Any:
    return current_step().client.load_dataset(name, version)


@step
def validate_data(
    data: Any,
    reference: str,
    reference_version: int | None = None,
    missing_rate_increase: float = 0.05,
    out_of_range_increase: float = 0.01,
    new_category_increase: float = 0.01,
) -> Any:
    """Check ``data`` against the profile of dataset ``reference``; fail with a report."""
    from heron._profiles import DatasetProfile
    from heron._quality import QualityConfig, quality_report

    ctx = current_step()
    version = ctx.client.get_dataset_version(reference, reference_version)
    ref = DatasetProfile.model_validate(version.profile)
    current = DatasetProfile.from_frame(data, reference=ref)
    config = QualityConfig(
        missing_rate_increase=missing_rate_increase,
        out_of_range_increase=out_of_range_increase,
        new_category_increase=new_category_increase,
    )
    report = quality_report(ref, current, config)
    text = _report_text(report, f"{reference} v{version.version}")
    print(text)
    ctx.log_metrics({"validation/failed": report.failed, "validation/warned": report.warned})
    if not report.passed:
        raise DataValidationFailed(text, field="data")
    return data


def _report_text(report: Any, against: str) -> str:
    lines = [f"data validation against {against}: {report.failed} failed, {report.warned} warned"]
    for check in report.checks:
        if check.verdict != "pass":
            where = f" [{check.column}]" if check.column else ""
            lines.append(f"  {check.verdict.upper()} {check.check}{where}: {check.message}")
    return "\n".join(lines)


@step(outputs=("train", "holdout"), libraries=("scikit-learn",))
def split_holdout(
    data: Any, target: str, test_size: float = 0.25, seed: int = 0
) -> tuple[Any, Any]:
    from sklearn.model_selection import train_test_split

    from heron._dataset_io import frame_digest

    if target not in data.columns:
        raise InvalidInput(f"the data has no target column {target!r}", field="target")
    train, holdout = train_test_split(data, test_size=test_size, random_state=seed)
    split = {
        "data_digest": frame_digest(data),
        "test_size": test_size,
        "seed": seed,
        "rows": len(holdout),
    }
    holdout = holdout.copy()
    holdout.attrs["heron.holdout"] = split
    print(f"holdout: {len(holdout)} of {len(data)} rows, data digest {split['data_digest']}")
    current_step().log_metrics({"holdout/rows": len(holdout), "train/rows": len(train)})
    return train, holdout


@step(libraries=("scikit-learn",))
def train_sklearn(
    train: Any,
    target: str,
    estimator: str = "sklearn.linear_model.LogisticRegression",
    params: dict[str, Any] | None = None,
) -> Any:
    """Fit the estimator at import path ``estimator`` with ``params`` on ``train``."""
    module, _, name = estimator.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"no estimator {estimator!r}", field="estimator") from exc
    model = cls(**(params or {}))
    model.fit(train.drop(columns=[target]), train[target])
    return model


def score(model: Any, holdout: Any, target: str, metrics: list[str]) -> dict[str, float]:
    import sklearn.metrics

    features, truth = holdout.drop(columns=[target]), holdout[target]
    scores = {}
    for metric in metrics:
        if metric not in _METRICS:
            raise InvalidInput(
                f"unknown metric {metric!r}; use one of {', '.join(_METRICS)}", field="metric"
            )
        fn_name, kwargs, _, proba = _METRICS[metric]
        if proba:
            predicted = model.predict_proba(features)
            if predicted.shape[1] == 2 and metric == "roc_auc":
                predicted = predicted[:, 1]
        else:
            predicted = model.predict(features)
        scores[metric] = float(getattr(sklearn.metrics, fn_name)(truth, predicted, **kwargs))
    return scores


@step(libraries=("scikit-learn",))
def evaluate_sklearn(
    model: Any, holdout: Any, target: str, metrics: list[str] | None = None
) -> dict[str, float]:
    scores = score(model, holdout, target, metrics or ["accuracy"])
    current_step().log_metrics({f"holdout/{k}": v for k, v in scores.items()})
    return scores


@step(cache=False, libraries=("scikit-learn",))
def validate_model(
    candidate: Any,
    holdout: Any,
    target: str,
    model_name: str,
    metric: str = "accuracy",
    margin: float = 0.0,
    guard_metrics: list[str] | None = None,
    guard_tolerance: float = 0.0,
    alias: str = "champion",
) -> dict[str, Any]:
    """The gate; never cached, as the champion can change between runs."""
    ctx = current_step()
    guards = list(guard_metrics or [])
    names = [metric, *[g for g in guards if g != metric]]
    candidate_scores = score(candidate, holdout, target, names)
    verdict: dict[str, Any] = {
        "metric": metric,
        "margin": margin,
        "guard_metrics": guards,
        "guard_tolerance": guard_tolerance,
        "candidate": candidate_scores,
        "champion": None,
        "champion_version": None,
        "holdout": holdout.attrs.get("heron.holdout", {"rows": len(holdout)}),
    }
    try:
        champion_version = ctx.client.resolve_model(f"models:/{model_name}@{alias}")
    except NotFound:
        verdict.update(passed=True, reason=f"no {alias} of {model_name!r} yet")
        return _record_verdict(ctx, verdict)
    champion = ctx.client.load_model(f"models:/{model_name}/{champion_version.version}").raw
    champion_scores = score(champion, holdout, target, names)
    verdict.update(champion=champion_scores, champion_version=champion_version.version)
    gain = _gain(metric, candidate_scores[metric], champion_scores[metric])
    problems = []
    if gain < margin:
        problems.append(
            f"{metric} {candidate_scores[metric]:.4g} vs champion "
            f"{champion_scores[metric]:.4g}: gain {gain:.4g} < margin {margin:g}"
        )
    for guard in guards:
        loss = -_gain(guard, candidate_scores[guard], champion_scores[guard])
        if loss > guard_tolerance:
            problems.append(f"guard {guard} regressed by {loss:.4g} (> {guard_tolerance:g})")
    verdict.update(
        passed=not problems,
        reason="; ".join(problems)
        or f"{metric} gain {gain:.4g} ≥ margin {margin:g} over version {champion_version.version}",
    )
    return _record_verdict(ctx, verdict)


def _gain(metric: str, candidate: float, champion: float) -> float:
    higher_is_better = _METRICS[metric][2]
    return candidate - champion if higher_is_better else champion - candidate


def _record_verdict(ctx: Any, verdict: dict[str, Any]) -> dict[str, Any]:
    print(f"model gate: {'passed' if verdict['passed'] else 'rejected'}: {verdict['reason']}")
    figures = {"gate/passed": float(verdict["passed"])}
    for who in ("candidate", "champion"):
        for name, value in (verdict[who] or {}).items():
            figures[f"gate/{who}/{name}"] = value
    ctx.log_metrics(figures)
    return verdict


@step(cache=False)
def register_model(
    model: Any,
    name: str,
    verdict: dict[str, Any] | None = None,
    alias: str | None = None,
    description: str = "",
    intended_use: str = "",
    limitations: str = "",
) -> dict[str, Any]:
    """Register ``model`` as a new version linked to this pipeline run, if the verdict
    passed; with ``alias`` the new version takes it (e.g. ``challenger``)."""
    from heron._entities import ModelCardFields

    ctx = current_step()
    if verdict is not None and not verdict.get("passed"):
        print(f"not registered: the gate rejected the model ({verdict.get('reason')})")
        return {"registered": False, "reason": verdict.get("reason")}
    card = ModelCardFields(
        description=description, intended_use=intended_use, limitations=limitations
    )
    version = ctx.client.log_model(
        model, name, run_id=ctx.run_id, pipeline_run_id=ctx.pipeline_run_id, card=card
    )
    if alias:
        ctx.client.set_alias(name, alias, version.version)
    print(f"registered {name} version {version.version}")
    return {"registered": True, "name": name, "version": version.version}
