"""Endpoints (revisions, rollback, audit, reference checks) and the prediction log, over
both transports and both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import heron
from heron._deployments import Target
from heron._predictions import PredictionRecord


@pytest.fixture
def models(client: heron.Client) -> heron.Client:
    """``clf`` with versions 1-3, ``champion`` → 1 and ``challenger`` → 2."""
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    for _ in range(3):
        client.log_model(model, "clf", input_example=X.head(2))
    client.set_alias("clf", "champion", 1)
    client.set_alias("clf", "challenger", 2)
    return client


def test_create_get_list(models: heron.Client) -> None:
    ep = models.create_endpoint("cancer", ["clf@champion"], description="breast cancer")
    assert ep.revision == 1
    assert ep.targets == [Target(model="clf", alias="champion", weight=100)]
    assert ep.shadow == [] and ep.sticky is None
    assert models.get_endpoint("cancer") == ep
    assert [e.name for e in models.list_endpoints().items] == ["cancer"]


def test_canary_shadow_and_sticky(models: heron.Client) -> None:
    ep = models.create_endpoint(
        "cancer",
        ["clf@champion:90", Target(model="clf", alias="challenger", weight=10)],
        shadow=["clf/3"],
        sticky="header:x-user-id",
    )
    assert [(t.ref, t.weight) for t in ep.targets] == [("clf@champion", 90), ("clf@challenger", 10)]
    assert [t.ref for t in ep.shadow] == ["clf/3"]
    assert ep.sticky is not None and (ep.sticky.source, ep.sticky.name) == ("header", "x-user-id")
    resolved = models.resolve_endpoint("cancer")
    assert [(r.version, r.weight) for r in resolved.targets] == [(1, 90), (2, 10)]
    assert [r.version for r in resolved.shadow] == [3]
    assert resolved.targets[0].signature is not None


def test_alias_move_changes_what_is_resolved(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf@champion"])
    before = models.resolve_endpoint("cancer")
    models.set_alias("clf", "champion", 3)
    after = models.resolve_endpoint("cancer")
    assert (before.targets[0].version, after.targets[0].version) == (1, 3)
    assert before.revision == after.revision and before.state != after.state


def test_resolving_what_is_gone_says_what_is_missing(models: heron.Client) -> None:
    with pytest.raises(heron.NotFound) as missing:
        models.resolve_endpoint("nowhere")
    assert missing.value.field == "name" and "nowhere" in missing.value.message
    models.create_endpoint("cancer", ["clf/2:50", "clf@champion:50"])
    models.delete_alias("clf", "champion")
    with pytest.raises(heron.NotFound) as gone:
        models.resolve_endpoint("cancer")
    assert gone.value.field == "targets"
    assert "clf@champion" in gone.value.message and "no alias" in gone.value.message


def test_every_change_is_a_revision_and_audited(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/1"])
    models.update_endpoint("cancer", targets=["clf/1:50", "clf/2:50"], comment="A-B")
    models.update_endpoint("cancer", sticky="column:b")
    ep = models.update_endpoint("cancer", clear_sticky=True, shadow=["clf/3"])
    assert ep.revision == 4 and ep.sticky is None
    revisions = models.list_endpoint_revisions("cancer")
    assert [r.revision for r in revisions] == [1, 2, 3, 4]
    assert [r.action for r in revisions] == ["create", "update", "update", "update"]
    assert revisions[1].comment == "A-B" and revisions[2].sticky is not None
    assert all(r.created_by for r in revisions)
    events = models.list_audit_events(object_type="endpoint", object_id="cancer").items
    assert [e.action for e in events] == ["create", "update", "update", "update"]
    assert events[1].before["targets"] == ["clf/1:100"]
    assert events[1].after["targets"] == ["clf/1:50", "clf/2:50"]


def test_description_only_update_keeps_the_revision(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/1"])
    ep = models.update_endpoint("cancer", description="new words")
    assert (ep.revision, ep.description) == (1, "new words")


def test_rollback_returns_to_the_previous_revision(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/1"])
    models.update_endpoint("cancer", targets=["clf/2"])
    ep = models.rollback_endpoint("cancer")
    assert (ep.revision, ep.targets[0].version) == (3, 1)
    ep = models.rollback_endpoint("cancer")  # undoing the rollback
    assert (ep.revision, ep.targets[0].version) == (4, 2)
    ep = models.rollback_endpoint("cancer", to_revision=1)
    assert (ep.revision, ep.targets[0].version) == (5, 1)
    last = models.list_endpoint_revisions("cancer")[-1]
    assert (last.action, last.restored) == ("rollback", 1)
    events = models.list_audit_events(object_type="endpoint", action="rollback").items
    assert [e.after["restored"] for e in events] == [1, 2, 1]


def test_rollback_of_a_first_revision_is_refused(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/1"])
    with pytest.raises(heron.Conflict):
        models.rollback_endpoint("cancer")
    with pytest.raises(heron.NotFound):
        models.rollback_endpoint("cancer", to_revision=7)


BAD_TARGETS = [
    (["nope@champion"], heron.NotFound, "targets"),
    (["clf@nope"], heron.NotFound, "targets"),
    (["clf/9"], heron.NotFound, "targets"),
    (["clf"], heron.InvalidInput, "targets"),
    (["clf/1:abc"], heron.InvalidInput, "targets"),
    ([], heron.InvalidInput, "targets"),
    (["clf/1:0"], heron.InvalidInput, "targets"),
    (["clf/1", "clf/1:5"], heron.InvalidInput, "targets"),
    ([{"model": "clf"}], heron.InvalidInput, "targets"),
    ([{"model": "clf", "version": 1, "weight": -1}], heron.InvalidInput, "targets"),
]


@pytest.mark.parametrize(
    ("targets", "error", "field"),
    BAD_TARGETS,
    ids=[
        "unknown-model",
        "unknown-alias",
        "unknown-version",
        "no-version-or-alias",
        "weight-not-a-number",
        "no-targets",
        "weights-add-to-zero",
        "same-version-twice",
        "dict-without-version",
        "negative-weight",
    ],
)
def test_bad_targets_are_refused_and_leave_nothing(
    models: heron.Client, targets: list, error: type[heron.HeronError], field: str
) -> None:
    with pytest.raises(error) as info:
        models.create_endpoint("cancer", targets)
    assert (info.value.field or "").startswith(field)
    assert models.list_endpoints().items == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "bad/name"}, heron.InvalidInput),
        ({"sticky": "cookie:x"}, heron.InvalidInput),
        ({"sticky": "header"}, heron.InvalidInput),
        ({"shadow": ["clf/7"]}, heron.NotFound),
    ],
    ids=["bad-name", "bad-sticky-source", "sticky-without-name", "unknown-shadow"],
)
def test_bad_endpoint_fields(models: heron.Client, kwargs: dict, error: type) -> None:
    args = {"name": "cancer", "targets": ["clf/1"], **kwargs}
    with pytest.raises(error):
        models.create_endpoint(**args)
    assert models.list_endpoints().items == []


def test_names_are_unique_and_archived_versions_are_not_served(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/1"])
    with pytest.raises(heron.AlreadyExists):
        models.create_endpoint("cancer", ["clf/2"])
    models.archive_model_version("clf", 3)
    with pytest.raises(heron.Conflict):
        models.update_endpoint("cancer", targets=["clf/3"])
    with pytest.raises(heron.InvalidInput):
        models.update_endpoint("cancer")
    assert models.get_endpoint("cancer").revision == 1
    with pytest.raises(heron.NotFound):
        models.get_endpoint("other")


def test_a_served_version_cannot_be_deleted_or_archived(models: heron.Client) -> None:
    models.create_endpoint("cancer", ["clf/3"], shadow=["clf@challenger"])
    with pytest.raises(heron.Conflict, match="endpoint 'cancer'"):
        models.delete_model_version("clf", 3)
    with pytest.raises(heron.Conflict, match="endpoint 'cancer'"):
        models.archive_model_version("clf", 3)
    models.update_endpoint("cancer", targets=["clf@champion"])
    models.delete_model_version("clf", 3)  # only the current revision counts


def _record(request_id: str, time: datetime, **extra: object) -> PredictionRecord:
    fields: dict = {
        "request_id": request_id,
        "endpoint": "cancer",
        "revision": 1,
        "model": "clf",
        "version": 1,
        "time": time,
        "latency_ms": 1.5,
        "rows": 2,
        "inputs": {"instances": [{"a": 1.0, "b": 0.0}, {"a": 2.0, "b": 1.0}]},
        "outputs": [0, 1],
    }
    return PredictionRecord(**{**fields, **extra})


def test_prediction_log_window_and_feedback(client: heron.Client) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    records = [_record(f"r{i}", t0 + timedelta(minutes=i)) for i in range(5)]
    records.append(_record("r0", t0, shadow=True, version=2, outputs=[1, 1]))
    client._call("log_predictions", records=records)

    page = client.list_predictions(
        "cancer", start=t0 + timedelta(minutes=1), end=t0 + timedelta(minutes=3)
    )
    assert [r.request_id for r in page.items] == ["r1", "r2"]
    assert page.items[0].inputs == records[1].inputs and page.items[0].outputs == [0, 1]

    result = client.log_feedback(
        "cancer", [{"request_id": "r0", "label": [0, 1]}, {"request_id": "zz", "label": 1}]
    )
    assert (result.accepted, result.unknown) == (1, ["zz"])
    joined = client.list_predictions("cancer", end=t0 + timedelta(seconds=1)).items
    assert [(r.shadow, r.label) for r in joined] == [(False, [0, 1]), (True, [0, 1])]
    primary = client.list_predictions("cancer", include_shadow=False).items
    assert len(primary) == 5 and not any(r.shadow for r in primary)
    assert client.log_feedback("other", [{"request_id": "r0", "label": 1}]).unknown == ["r0"]


def test_trimming_the_log_takes_the_probabilities_of_the_rows_it_deletes(
    settings: heron.Settings,
) -> None:
    """Retention trims class probabilities with their log rows, on both backends: a row
    whose request sorts before the cutoff but is still logged (answered in the same
    millisecond) keeps its probabilities; probabilities without a log row go."""
    from sqlalchemy import select

    from heron._predictions import insert_rows
    from heron._services import Services
    from heron._store import _tables as t

    services = Services(settings)
    # Logged in this order: "a5" sorts before "a9" (the newest row trimmed) but is kept.
    ids = ["a1", "a2", "a9", "a5", "b1", "c1"]
    services.predictions.write_log_rows(
        [
            (i, "cancer", 1, "clf", 1, False, 1000 + n, 1.0, 1, None, "[0]")
            for n, i in enumerate(ids)
        ]
    )
    proba = [("cancer", i, "clf", 1, "[0, 1]", "[[0.9, 0.1]]") for i in [*ids, "a0"]]
    proba.append(("other", "a1", "clf", 1, "[0, 1]", "[[0.5, 0.5]]"))
    with services.metadata.write() as conn:
        columns = ("endpoint", "request_id", "model", "version", "classes", "proba")
        insert_rows(conn, "prediction_proba", columns, proba)

    assert services.predictions.trim_predictions("cancer", 3) == 3  # a1, a2, a9
    table = t.prediction_proba
    with services.metadata.read() as conn:
        left = conn.execute(select(table.c.endpoint, table.c.request_id)).all()
    assert sorted(left) == [("cancer", "a5"), ("cancer", "b1"), ("cancer", "c1"), ("other", "a1")]
    services.close()


def test_prediction_log_pages(client: heron.Client) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    client._call("log_predictions", records=[_record(f"r{i}", t0) for i in range(7)])
    seen, token = [], None
    while True:
        page = client.list_predictions("cancer", max_results=3, page_token=token)
        seen += [r.request_id for r in page.items]
        if not (token := page.next_page_token):
            break
    assert seen == [f"r{i}" for i in range(7)]


def test_feedback_refuses_malformed_items(client: heron.Client) -> None:
    with pytest.raises(heron.InvalidInput):
        client.log_feedback("cancer", [{"label": 1}])
