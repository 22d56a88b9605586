"""Run search: the filter language, its errors, ordering, and the SQL on SQLite/PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.pool import StaticPool

from heron._errors import InvalidInput
from heron._search import (
    And,
    Comparison,
    Or,
    compile_filter,
    order_by_clauses,
    parse_filter,
    tokenize,
)
from heron._store._tables import experiments, latest_metrics, metadata, params, run_tags, runs

POSTGRES_URL = os.environ.get("HERON_TEST_POSTGRES_URL")

RUNS = [
    # id, name, status, start_time, end_time, user, git_commit
    ("r1", "alpha", "finished", 1000, 2000, "alice", "abc123"),
    ("r2", "beta", "finished", 2000, 3000, "bob", None),
    ("r3", "gamma", "failed", 3000, None, "alice", None),
    ("r4", "delta", "running", 4000, None, "carol", None),
    ("r5", "Alpha-2", "killed", 5000, 6000, "bob", None),
]
PARAMS = {
    "r1": {"C": "1.0", "model": "ResNet50", "lr rate": "0.1"},
    "r2": {"C": "10", "model": "resnet18"},
    "r3": {"C": "1.0", "model": "vit_b"},
    "r5": {"C": "0.1", "model": "50%off"},
}
TAGS = {
    "r1": {"team": "vision", "release.stage": "prod"},
    "r2": {"team": "nlp"},
    "r3": {"team": "vision"},
    "r4": {"note": "100%_done"},
}
METRICS = {
    "r1": {"accuracy": 0.9, "loss": 0.3, "val loss": 0.25},
    "r2": {"accuracy": 0.7, "loss": -0.5},
    "r3": {"accuracy": 0.95},
    "r5": {"loss": 1e-3},
}


def _populate(engine: Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(experiments), [{"id": 1, "name": "exp", "created_at": 0}])
        conn.execute(
            insert(runs),
            [
                {
                    "id": run_id,
                    "experiment_id": 1,
                    "name": name,
                    "status": status,
                    "start_time": start,
                    "end_time": end,
                    "user": user,
                    "host": "box",
                    "git_commit": commit,
                }
                for run_id, name, status, start, end, user, commit in RUNS
            ],
        )
        for table, rows in ((params, PARAMS), (run_tags, TAGS)):
            conn.execute(
                insert(table),
                [
                    {"run_id": run_id, "key": key, "value": value}
                    for run_id, pairs in rows.items()
                    for key, value in pairs.items()
                ],
            )
        conn.execute(
            insert(latest_metrics),
            [
                {"run_id": run_id, "key": key, "value": value, "step": 3, "timestamp": 10}
                for run_id, values in METRICS.items()
                for key, value in values.items()
            ],
        )


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    _populate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    if not POSTGRES_URL:
        pytest.skip("set HERON_TEST_POSTGRES_URL to run the PostgreSQL search tests")
    schema = f"heron_search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = admin.execution_options(schema_translate_map={None: schema})
    try:
        _populate(engine)
        yield engine
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


def search(engine: Engine, filter_text: str, order_by: Sequence[str] = ("run_id",)) -> list[str]:
    query = (
        select(runs.c.id)
        .where(compile_filter(parse_filter(filter_text)))
        .order_by(*order_by_clauses(order_by))
    )
    with engine.connect() as conn:
        return list(conn.scalars(query))


MATCHES = [
    ("metrics.accuracy > 0.8", ["r1", "r3"], "metric-gt"),
    ("metrics.accuracy >= 0.9", ["r1", "r3"], "metric-ge"),
    ("metrics.accuracy = 0.7", ["r2"], "metric-eq"),
    ("metrics.accuracy != 0.7", ["r1", "r3"], "metric-ne-missing-never-matches"),
    ("metrics.loss < 0", ["r2"], "metric-lt-zero"),
    ("metrics.loss <= 1e-3", ["r2", "r5"], "metric-exponent"),
    ("metrics.loss > -1", ["r1", "r2", "r5"], "metric-negative"),
    ("metrics.loss is null", ["r3", "r4"], "metric-is-null"),
    ("metrics.loss IS NOT NULL", ["r1", "r2", "r5"], "metric-is-not-null"),
    ("params.C = '1.0'", ["r1", "r3"], "param-eq-single-quotes"),
    ('params.C = "10"', ["r2"], "param-eq-double-quotes"),
    ("params.C != '1.0'", ["r2", "r5"], "param-ne-missing-never-matches"),
    ("params.model like 'res%'", ["r2"], "like-is-case-sensitive"),
    ("params.model ILIKE 'res%'", ["r1", "r2"], "ilike"),
    (r"params.model like '%\%%'", ["r5"], "like-escaped-percent"),
    ("params.model like 'vit_b'", ["r3"], "like-underscore-wildcard"),
    (r"tags.note like '100\%\_done'", ["r4"], "like-escaped-underscore"),
    ("params.C in ('1.0', '10')", ["r1", "r2", "r3"], "in"),
    ("params.C not in ('1.0')", ["r2", "r5"], "not-in"),
    ("tags.team = 'vision'", ["r1", "r3"], "tag-eq"),
    ("tags.note is not null", ["r4"], "tag-is-not-null"),
    ("tags.`release.stage` = 'prod'", ["r1"], "backtick-key-with-dot"),
    ('metrics."val loss" < 0.5', ["r1"], "double-quoted-key-with-space"),
    ("params.`lr rate` = '0.1'", ["r1"], "backtick-key-with-space"),
    (
        "params.C = '1.0' or params.C = '10' and metrics.accuracy > 0.8",
        ["r1", "r3"],
        "and-binds-tighter-than-or",
    ),
    (
        "(params.C = '1.0' or params.C = '10') and metrics.accuracy < 0.8",
        ["r2"],
        "parentheses",
    ),
    (
        "metrics.accuracy > 0.5 and tags.team = 'vision' or status = 'running'",
        ["r1", "r3", "r4"],
        "mixed-tables",
    ),
    ("params.C = '1.0' AND Metrics.accuracy > 0.92", ["r3"], "case-insensitive-keywords"),
    ("((metrics.accuracy > 0.8))", ["r1", "r3"], "nested-parentheses"),
    ("status = 'finished'", ["r1", "r2"], "status"),
    ("attributes.status = 'FAILED'", ["r3"], "status-any-case"),
    ("status in ('running', 'killed')", ["r4", "r5"], "status-in"),
    ("name like 'Alpha%'", ["r5"], "name-like"),
    ("name ilike 'alpha%'", ["r1", "r5"], "name-ilike"),
    ("user = 'bob'", ["r2", "r5"], "user"),
    ("git_commit = 'abc123'", ["r1"], "git-commit"),
    ("start_time >= 3000", ["r3", "r4", "r5"], "start-time-ms"),
    ("start_time < '1970-01-01T00:00:02.500+00:00'", ["r1", "r2"], "start-time-iso"),
    ("end_time is null", ["r3", "r4"], "end-time-is-null"),
    ("run_id = 'r2'", ["r2"], "run-id"),
    ("attributes.id in ('r1', 'r4')", ["r1", "r4"], "id-alias"),
    ("", ["r1", "r2", "r3", "r4", "r5"], "empty-matches-all"),
]


@pytest.mark.parametrize(
    ("filter_text", "expected"), [pytest.param(*case[:2], id=case[2]) for case in MATCHES]
)
def test_filter_matches(engine: Engine, filter_text: str, expected: list[str]) -> None:
    assert search(engine, filter_text) == expected


MALFORMED = [
    ("metrics.accuracy >> 0.5", "'>>' at position 17", "bad-operator"),
    ("metric.accuracy > 0.5", "'metric.'", "unknown-prefix"),
    ("metrics.accuracy > high", "'high'", "metric-needs-number"),
    ("params.C = 1.0", "'1.0'", "param-needs-quoted-string"),
    ("(metrics.accuracy > 0.5", "unclosed parenthesis", "unclosed-parenthesis"),
    ("params.C in ('1.0'", "unclosed parenthesis", "unclosed-in-list"),
    ("params.C = '1.0", "unterminated string", "unterminated-string"),
    ("metrics.`val loss > 1", "unterminated identifier", "unterminated-identifier"),
    ("metrics.accuracy > 0.5)", "')'", "stray-closing-parenthesis"),
    ("metrics.accuracy > 0.5 and", "'and'", "dangling-and"),
    ("metrics.accuracy > 0.5 metrics.loss < 1", "'metrics.loss'", "missing-and"),
    ("foo = 'x'", "'foo'", "unknown-attribute"),
    ("attributes.colour = 'red'", "colour", "unknown-prefixed-attribute"),
    ("metrics.accuracy like '0.%'", "'like'", "like-on-metric"),
    ("params.C > '1'", "'>'", "ordering-on-param"),
    ("status = 'runing'", "'runing'", "unknown-status"),
    ("metrics.accuracy 0.5", "'0.5'", "missing-operator"),
    ("params.C in '1.0'", "'1.0'", "in-without-parentheses"),
    ("params.C in ('1.0' '10')", "'10'", "in-missing-comma"),
    ("params.C in ()", "')'", "empty-in-list"),
    ("tags.x is nul", "'nul'", "is-without-null"),
    ("tags.x not like 'a'", "'like'", "not-without-in"),
    ("metrics.accuracy > 1e999", "'1e999'", "infinite-number"),
    ("params.model like 'abc\\'", "'abc\\'", "pattern-ends-with-escape"),
    ("start_time > 'yesterday'", "'yesterday'", "bad-time"),
    ("metrics.accuracy > 1 # note", "'#'", "unexpected-character"),
    ("metrics.`` > 1", "empty key", "empty-key"),
    ("params.C = 'a\x00b'", "'\\x00' at position 13", "nul-character"),
    ("start_time > 1e300", "'1e300'", "time-out-of-range"),
    ("metrics. `x` > 1", "'`x`'", "space-before-quoted-key"),
    ("'accuracy' > 1", "'accuracy'", "string-as-field"),
    ("metrics.accuracy >", "nothing", "missing-value"),
    ("(" * 40 + "status = 'failed'" + ")" * 40, "nested deeper", "too-deep"),
    (" or ".join(["status = 'failed'"] * 201), "more than 200", "too-many-comparisons"),
    ("name in (" + ", ".join(["'a'"] * 1001) + ")", "more than 1000", "long-in-list"),
]


@pytest.mark.parametrize(
    ("filter_text", "fragment"), [pytest.param(*case[:2], id=case[2]) for case in MALFORMED]
)
def test_malformed_filter(filter_text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter(filter_text)
    assert info.value.field == "filter"
    assert fragment in info.value.message


def test_unknown_prefix_suggests_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"use metrics\., params\., tags\. or attributes\."):
        parse_filter("metric.accuracy > 0.5")


def test_blank_filter_is_none() -> None:
    assert parse_filter("") is None
    assert parse_filter("  \n\t") is None


def test_parse_tree_shape() -> None:
    a = Comparison("metric", "a", ">", 1.0)
    b = Comparison("param", "b", "=", "x")
    c = Comparison("tag", "c c", "in", ("y", "z"))
    parsed = parse_filter("metrics.a > 1 OR params.b = 'x' and tags.`c c` in ('y', \"z\")")
    assert parsed == Or((a, And((b, c))))
    assert parse_filter("(metrics.a > 1 or params.b = 'x') and tags.`c c` in ('y','z')") == And(
        (Or((a, b)), c)
    )


def test_quotes_are_escaped_by_doubling() -> None:
    assert parse_filter("tags.`a``b` = 'it''s'") == Comparison("tag", "a`b", "=", "it's")


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.accuracy DESC"], ["r3", "r1", "r2", "r4", "r5"]),
        (["metrics.accuracy asc"], ["r2", "r1", "r3", "r4", "r5"]),
        (["metrics.loss"], ["r2", "r5", "r1", "r3", "r4"]),
        (["metrics.`val loss` DESC"], ["r1", "r2", "r3", "r4", "r5"]),
        (["end_time DESC"], ["r5", "r2", "r1", "r3", "r4"]),
        (["end_time"], ["r1", "r2", "r5", "r3", "r4"]),
        (["start_time DESC"], ["r5", "r4", "r3", "r2", "r1"]),
        (["status", "metrics.accuracy DESC"], ["r3", "r1", "r2", "r5", "r4"]),
        (["tags.team DESC"], ["r1", "r3", "r2", "r4", "r5"]),
        ([], ["r5", "r4", "r3", "r2", "r1"]),
    ],
    ids=[
        "metric-desc-missing-last",
        "metric-asc-missing-last",
        "metric-default-asc",
        "quoted-metric-key",
        "nullable-attribute-desc",
        "nullable-attribute-asc",
        "attribute-desc",
        "ties-then-metric",
        "tag-desc-ties-by-id",
        "default-newest-first",
    ],
)
def test_order_by(engine: Engine, order_by: list[str], expected: list[str]) -> None:
    assert search(engine, "", order_by) == expected


def test_order_by_string_values_sort_binary_on_sqlite(sqlite_engine: Engine) -> None:
    # Collation-dependent, so SQLite only: '10' > '1.0' > '0.1' as strings, r4 has no C.
    assert search(sqlite_engine, "", ["params.C DESC", "name"]) == ["r2", "r1", "r3", "r5", "r4"]
    assert search(sqlite_engine, "", ["name"]) == ["r5", "r1", "r2", "r4", "r3"]


def test_filter_and_order_compose_with_pagination(engine: Engine) -> None:
    query = (
        select(runs.c.id)
        .where(compile_filter(parse_filter("metrics.loss > -1 or tags.team = 'vision'")))
        .order_by(*order_by_clauses(["metrics.accuracy DESC"]))
    )
    with engine.connect() as conn:
        first = list(conn.scalars(query.limit(2)))
        second = list(conn.scalars(query.limit(2).offset(2)))
        rest = list(conn.scalars(query.offset(4)))
    assert first + second + rest == ["r3", "r1", "r2", "r5"]


@pytest.mark.parametrize(
    ("order_by", "fragment"),
    [
        (["metrics.accuracy DOWN"], "'DOWN'"),
        (["metric.accuracy"], "'metric.'"),
        ([""], "empty"),
        (["metrics.accuracy DESC extra"], "'extra'"),
        (["params.C = '1'"], "'='"),
        (["metrics.`x"], "unterminated identifier"),
        (["colour"], "'colour'"),
    ],
    ids=["bad-direction", "bad-prefix", "empty", "trailing", "comparison", "unterminated", "field"],
)
def test_malformed_order_by(order_by: list[str], fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        order_by_clauses(order_by)
    assert info.value.field == "order_by"
    assert fragment in info.value.message


@given(st.text())
def test_tokenizer_raises_only_invalid_input(source: str) -> None:
    try:
        tokens = tokenize(source)
    except InvalidInput as exc:
        assert exc.field == "filter"
    else:
        assert tokens[-1].kind == "end"


FRAGMENTS = [
    "metrics.a", "params.`b c`", "tags.", "status", "attributes.", "'x'", '"y"', "`z`", "1",
    "-2.5e3", "(", ")", ",", "=", "!=", ">=", "<", "like", "in", "not", "is", "null", "and",
    "or", "desc", "''", "\\", "%",
]  # fmt: skip


@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(" ".join)))
def test_parser_raises_only_invalid_input(source: str) -> None:
    try:
        expr = parse_filter(source)
    except InvalidInput as exc:
        assert exc.field == "filter"
    else:
        compile_filter(expr)
    try:
        order_by_clauses([source])
    except InvalidInput as exc:
        assert exc.field == "order_by"
