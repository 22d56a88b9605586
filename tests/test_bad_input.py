"""Bad input gets a clear error naming the field, and leaves nothing behind."""

from __future__ import annotations

import pytest

import heron

BAD_NAMES = [
    ("a/b", "slash"),
    ("..", "dotdot"),
    ("a..b", "inner-dotdot"),
    ("x\x00y", "nul"),
    ("tab\tname", "control"),
    (" padded", "leading-space"),
    ("", "empty"),
    ("n" * 201, "too-long"),
    ("a\\b", "backslash"),
    ("%2e%2e", "encoded"),
]


@pytest.mark.parametrize("name", [n for n, _ in BAD_NAMES], ids=[i for _, i in BAD_NAMES])
def test_invalid_experiment_names(client: heron.Client, name: str) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        client.create_experiment(name)
    assert info.value.field == "name"
    assert client.list_experiments().items == []


@pytest.mark.parametrize("name", [n for n, _ in BAD_NAMES], ids=[i for _, i in BAD_NAMES])
def test_invalid_run_experiment_names_leave_no_run(client: heron.Client, name: str) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        client.start_run(experiment=name)
    assert info.value.field == "experiment"
    assert client.search_runs().items == []


@pytest.mark.parametrize(
    "key", ["a b/../c", "x\ny", "", "../k"], ids=["dotdot", "newline", "empty", "parent"]
)
def test_invalid_param_keys(client: heron.Client, key: str) -> None:
    with client.start_run(experiment="e") as run:
        with pytest.raises(heron.InvalidInput) as info:
            run.log_params({"good": 1, key: 2})
        assert info.value.field is not None and info.value.field.startswith("params.")
    assert client.get_run(run.id).params == {}  # the good key was not half-written


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.get_experiment("nope"), "experiment"),
        (lambda c: c.get_run("0" * 32), "run_id"),
        (lambda c: c.get_registered_model("nope"), "name"),
        (lambda c: c.get_dataset("nope"), "name"),
        (lambda c: c.get_metric_history("0" * 32, "loss"), "run_id"),
        (lambda c: c.list_model_versions("nope"), "name"),
    ],
    ids=["experiment", "run", "model", "dataset", "metric-history", "versions"],
)
def test_unknown_objects_are_not_found(client: heron.Client, call, field: str) -> None:
    with pytest.raises(heron.NotFound) as info:
        call(client)
    assert info.value.field == field


def test_unknown_model_version_and_alias(client: heron.Client) -> None:
    client.create_registered_model("m")
    with pytest.raises(heron.NotFound) as info:
        client.get_model_version("m", 7)
    assert info.value.field == "version"
    with pytest.raises(heron.NotFound) as info:
        client.resolve_model("models:/m@champion")
    assert info.value.field == "alias"


def test_duplicates_are_conflicts(client: heron.Client) -> None:
    client.create_registered_model("m")
    with pytest.raises(heron.AlreadyExists):
        client.create_registered_model("m")
    assert [m.name for m in client.list_registered_models().items] == ["m"]


@pytest.mark.parametrize(
    "alias", ["3", "a/b", "", "x" * 300], ids=["numeric", "slash", "empty", "long"]
)
def test_invalid_aliases(client: heron.Client, alias: str) -> None:
    client.create_registered_model("m")
    with pytest.raises((heron.InvalidInput, heron.NotFound)):
        client.set_alias("m", alias, 1)
    assert client.get_registered_model("m").aliases == {}


def test_version_from_unknown_source_leaves_no_model(client: heron.Client) -> None:
    with pytest.raises(heron.NotFound) as info:
        client._call("create_model_version", name="ghost", source="0" * 64, flavor="sklearn")
    assert info.value.field == "source"
    with pytest.raises(heron.NotFound):
        client.get_registered_model("ghost")


def test_version_from_unknown_run_leaves_nothing(client: heron.Client, tmp_path) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0], [1]], [0, 1])
    with pytest.raises(heron.NotFound):
        client.log_model(model, "orphan", run_id="f" * 32)
    with pytest.raises(heron.NotFound):
        client.get_registered_model("orphan")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_results": 0}, "max_results"),
        ({"max_results": 5000}, "max_results"),
        ({"page_token": "%%%"}, "page_token"),
    ],
    ids=["zero-page", "huge-page", "forged-token"],
)
def test_bad_paging(client: heron.Client, kwargs, field: str) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        client.search_runs(**kwargs)
    assert info.value.field == field


def test_every_state_change_is_audited(client: heron.Client) -> None:
    from sklearn.dummy import DummyClassifier

    with client.start_run(experiment="audited") as run:
        mv = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), "m")
    client.set_alias("m", "champion", mv.version)
    events = client.list_audit_events(max_results=1000).items
    seen = {(e.action, e.object_type) for e in events}
    assert {
        ("create", "experiment"),
        ("create", "run"),
        ("create", "registered_model"),
        ("create", "model_version"),
        ("set_alias", "model_alias"),
        ("end", "run"),
    } <= seen
    alias_event = next(e for e in events if e.action == "set_alias")
    assert alias_event.object_id == "m@champion"
    assert alias_event.before == {"version": None} and alias_event.after == {"version": 1}
