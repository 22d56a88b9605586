"""Run search: the filter and order-by language, compiled to SQLAlchemy over ``runs``.

Filter grammar (keywords are case-insensitive; ``and`` binds tighter than ``or``)::

    filter      := disjunction | (blank)
    disjunction := conjunction ("or" conjunction)*
    conjunction := primary ("and" primary)*
    primary     := "(" disjunction ")" | comparison
    comparison  := field operator value
    field       := ("metrics." | "params." | "tags." | "attributes.") key | attribute
    key         := [A-Za-z0-9_./-]+ | `any text` | "any text"
    attribute   := status | name | user | host | git_commit | run_id | id
                 | start_time | end_time

    metrics.<key>            =  !=  <  <=  >  >=   number (the run's latest value)
    params.<key>, tags.<key> =  !=  like  ilike  in (...)  not in (...)   quoted string
    status, name, user, ...  as params (status values are checked, in any case)
    start_time, end_time     as metrics; ms since the epoch or a quoted ISO 8601 date
    any field                is null  |  is not null   (has not / has this key)

A run without the key never matches a comparison on it, ``!=`` and ``not in`` included.
``like`` is case-sensitive on every database (``ilike`` is not); ``%`` and ``_`` are the
wildcards and ``\\`` escapes them. Errors are :class:`InvalidInput` with ``field="filter"``
(or ``"order_by"``) and name the offending token and its 0-based position.

Comparisons compile to correlated ``EXISTS`` subqueries, so a filter is one WHERE clause
over ``runs`` that composes with ordering and pagination and never duplicates a row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Table,
    and_,
    exists,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from heron._entities import RunStatus
from heron._errors import InvalidInput
from heron._store._tables import latest_metrics, params, run_tags, runs

Kind = Literal["metric", "param", "tag", "attribute"]
Value = float | int | str | tuple[str, ...] | None


@dataclass(frozen=True)
class Comparison:
    """``kind`` and ``key`` name what is compared; ``value`` is a float for metrics, int ms
    for times, a string, a tuple of strings for ``in``/``not in``, None for ``is null``."""

    kind: Kind
    key: str
    op: str
    value: Value = None


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


Expr = Comparison | And | Or

PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "params": "param",
    "tags": "tag",
    "attributes": "attribute",
}
_PREFIX_HINT = "use metrics., params., tags. or attributes."
_ATTRIBUTES: dict[str, Column[Any]] = {
    "status": runs.c.status,
    "name": runs.c.name,
    "user": runs.c.user,
    "host": runs.c.host,
    "git_commit": runs.c.git_commit,
    "run_id": runs.c.id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}
_ATTRIBUTE_ALIASES = {"id": "run_id"}
_TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
_KEY_VALUE_TABLES: dict[Kind, Table] = {
    "metric": latest_metrics,
    "param": params,
    "tag": run_tags,
}

NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = ("=", "!=", "like", "ilike", "in", "not in")
NULL_OPS = ("is null", "is not null")

# Bounds on what one filter may ask for: SQLite refuses expressions nested past 1000 levels
# and statements with more than 32766 parameters, and parsing is recursive.
MAX_COMPARISONS = 200
MAX_NESTING = 32
MAX_IN_VALUES = 1000
MAX_MILLIS = 2**53  # past any date, and still a float without loss


# --- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "number", "string", "ident", "op", "punct", "end"]
    text: str  # as written
    value: str  # without quotes, for strings and `identifiers`
    pos: int

    def shown(self) -> str:
        if self.kind == "end":
            return "nothing"
        return self.text if self.kind == "string" else f"'{self.text}'"


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_./-]*)
  | (?P<op>[<>=!]+)
  | (?P<punct>[(),])
  | (?P<quote>['"`])
    """,
    re.VERBOSE,
)


def tokenize(text: str, *, field: str = "filter") -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; raises only InvalidInput."""
    if "\x00" in text:  # PostgreSQL refuses NUL even inside a string
        pos = text.index("\x00")
        raise InvalidInput(
            f"unexpected character '\\x00' at position {pos} in {field}", field=field
        )
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidInput(
                f"unexpected character {text[pos]!r} at position {pos} in {field}", field=field
            )
        kind = match.lastgroup
        if kind == "quote":
            token = _quoted(text, pos, field)
        elif kind == "space":
            pos = match.end()
            continue
        else:
            token = Token(kind, match.group(), match.group(), pos)  # type: ignore[arg-type]
        tokens.append(token)
        pos += len(token.text)
    tokens.append(Token("end", "", "", len(text)))
    return tokens


def _quoted(text: str, start: int, field: str) -> Token:
    """A quoted string or `identifier`; a doubled quote inside stands for one quote."""
    quote = text[start]
    pos = start + 1
    while True:
        end = text.find(quote, pos)
        if end == -1:
            what = "identifier" if quote == "`" else "string"
            raise InvalidInput(
                f"unterminated {what} starting at position {start} in {field}", field=field
            )
        if text.startswith(quote, end + 1):
            pos = end + 2
            continue
        raw = text[start : end + 1]
        value = raw[1:-1].replace(quote * 2, quote)
        return Token("ident" if quote == "`" else "string", raw, value, start)


# --- parsing -------------------------------------------------------------------------------


def parse_filter(text: str) -> Expr | None:
    """The expression ``text`` denotes, or None when it is blank."""
    parser = _Parser(text, "filter")
    if parser.peek().kind == "end":
        return None
    expr = parser.disjunction(0)
    parser.expect_end()
    return expr


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.field = field
        self.tokens = tokenize(text, field=field)
        self.index = 0
        self.comparisons = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() in words

    def fail(self, message: str, token: Token, hint: str = "") -> NoReturn:
        where = "at the end of" if token.kind == "end" else f"at position {token.pos} in"
        hint = f" ({hint})" if hint else ""
        raise InvalidInput(f"{message} {where} {self.field}{hint}", field=self.field)

    def unexpected(self, token: Token) -> NoReturn:
        if token.kind == "end" and self.index > 0:
            last = self.tokens[self.index - 1].shown()
            raise InvalidInput(f"{self.field} ends early, after {last}", field=self.field)
        self.fail(f"unexpected token {token.shown()}", token)

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            self.unexpected(self.peek())

    def disjunction(self, depth: int) -> Expr:
        items = [self.conjunction(depth)]
        while self.at_word("or"):
            self.advance()
            items.append(self.conjunction(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self, depth: int) -> Expr:
        items = [self.primary(depth)]
        while self.at_word("and"):
            self.advance()
            items.append(self.primary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def primary(self, depth: int) -> Expr:
        token = self.peek()
        if token.text != "(" or token.kind != "punct":
            return self.comparison()
        if depth >= MAX_NESTING:
            self.fail(f"parentheses nested deeper than {MAX_NESTING}", token)
        self.advance()
        expr = self.disjunction(depth + 1)
        closing = self.peek()
        if closing.kind == "end":
            self.fail("unclosed parenthesis", token)
        if closing.text != ")":
            self.unexpected(closing)
        self.advance()
        return expr

    def comparison(self) -> Comparison:
        start = self.peek()
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            self.fail(f"more than {MAX_COMPARISONS} comparisons", start)
        kind, key = self.field_name()
        shown = _field_text(kind, key)
        op = self.operator(kind, key, shown)
        return Comparison(kind, key, op, self.value(kind, key, op, shown))

    def field_name(self) -> tuple[Kind, str]:
        token = self.advance()
        if token.kind != "word":
            if token.kind in ("string", "ident"):
                self.fail(f"expected a field, got {token.shown()}", token, _PREFIX_HINT)
            self.unexpected(token)
        prefix, dot, key = token.text.partition(".")
        if not dot:
            return "attribute", self.attribute(token.text, token)
        kind = PREFIXES.get(prefix.lower())
        if kind is None:
            self.fail(f"unknown field prefix '{prefix}.'", token, _PREFIX_HINT)
        if not key:
            quoted = self.advance()
            if quoted.kind not in ("string", "ident") or quoted.pos != token.pos + len(token.text):
                self.fail(f"expected a key after '{token.text}', got {quoted.shown()}", quoted)
            if not quoted.value:
                self.fail(f"empty key after '{token.text}'", quoted)
            key = quoted.value
        return kind, self.attribute(key, token) if kind == "attribute" else key

    def attribute(self, name: str, token: Token) -> str:
        name = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if name not in _ATTRIBUTES:
            known = ", ".join([*_ATTRIBUTES, *_ATTRIBUTE_ALIASES])
            self.fail(
                f"unknown field '{token.text}'",
                token,
                f"use metrics.<key>, params.<key>, tags.<key> or an attribute: {known}",
            )
        return name

    def operator(self, kind: Kind, key: str, shown: str) -> str:
        token = self.advance()
        word = token.text.lower() if token.kind == "word" else ""
        if token.kind == "op":
            op = token.text
            if op not in NUMBER_OPS:
                self.unexpected(token)
        elif word in ("like", "ilike", "in"):
            op = word
        elif word in ("not", "is"):
            op = self.compound_operator(word)
        else:
            self.fail(f"expected an operator after {shown}, got {token.shown()}", token)
        allowed = _operators_for(kind, key)
        if op not in allowed:
            self.fail(
                f"operator '{op}' does not apply to {shown}", token, f"use {', '.join(allowed)}"
            )
        return op

    def compound_operator(self, first: str) -> str:
        words = [first]
        expected = ("in",) if first == "not" else ("not", "null")
        while True:
            token = self.advance()
            word = token.text.lower() if token.kind == "word" else ""
            if word not in expected:
                wanted = " or ".join(expected)
                self.fail(f"expected {wanted} after '{words[-1]}', got {token.shown()}", token)
            words.append(word)
            if word != "not":
                return " ".join(words)
            expected = ("null",)

    def value(self, kind: Kind, key: str, op: str, shown: str) -> Value:
        if op in NULL_OPS:
            return None
        if op in ("in", "not in"):
            return self.string_list(kind, key, shown)
        token = self.advance()
        if kind == "metric":
            return self.number(token, shown)
        if kind == "attribute" and key in _TIME_ATTRIBUTES:
            return self.time(token, shown)
        return self.string(token, kind, key, op, shown)

    def number(self, token: Token, shown: str) -> float:
        number = float(token.text) if token.kind == "number" else math.nan
        if not math.isfinite(number):
            self.fail(f"{shown} needs a number, got {token.shown()}", token)
        return number

    def time(self, token: Token, shown: str) -> int:
        if token.kind == "number" and abs(self.number(token, shown)) < MAX_MILLIS:
            return int(float(token.text))
        if token.kind == "string":
            try:
                when = datetime.fromisoformat(token.value)
            except ValueError:
                pass
            else:
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
                return int(when.timestamp() * 1000)
        self.fail(
            f"{shown} needs milliseconds since the epoch or an ISO 8601 date, got {token.shown()}",
            token,
        )

    def string(self, token: Token, kind: Kind, key: str, op: str, shown: str) -> str:
        if token.kind != "string":
            self.fail(f"{shown} needs a quoted string, got {token.shown()}", token)
        value = token.value
        if op in ("like", "ilike"):
            if re.search(r"(?<!\\)(?:\\\\)*\\$", value):
                self.fail(f"pattern {token.shown()} ends with an escape character", token)
        elif kind == "attribute" and key == "status":
            value = value.lower()
            if value not in set(RunStatus):
                statuses = ", ".join(status.value for status in RunStatus)
                self.fail(f"unknown status {token.shown()}", token, f"use {statuses}")
        return value

    def string_list(self, kind: Kind, key: str, shown: str) -> tuple[str, ...]:
        opening = self.advance()
        if opening.text != "(" or opening.kind != "punct":
            self.fail(f"expected '(' after in, got {opening.shown()}", opening)
        values: list[str] = []
        while True:
            token = self.advance()
            if token.kind == "end":
                self.fail("unclosed parenthesis", opening)
            if len(values) == MAX_IN_VALUES:
                self.fail(f"more than {MAX_IN_VALUES} values in a list", token)
            values.append(self.string(token, kind, key, "in", shown))
            separator = self.advance()
            if separator.text == ")" and separator.kind == "punct":
                return tuple(values)
            if separator.text != "," or separator.kind != "punct":
                if separator.kind == "end":
                    self.fail("unclosed parenthesis", opening)
                self.unexpected(separator)


def _operators_for(kind: Kind, key: str) -> tuple[str, ...]:
    if kind == "metric" or (kind == "attribute" and key in _TIME_ATTRIBUTES):
        return NUMBER_OPS + NULL_OPS
    return STRING_OPS + NULL_OPS


def _field_text(kind: Kind, key: str) -> str:
    if kind == "attribute":
        return key
    prefix = next(prefix for prefix, k in PREFIXES.items() if k == kind)
    plain = re.fullmatch(r"[A-Za-z0-9_/-][A-Za-z0-9_./-]*", key)
    return f"{prefix}.{key}" if plain else f"{prefix}.`{key.replace('`', '``')}`"


# --- SQL -----------------------------------------------------------------------------------


def compile_filter(expr: Expr | None) -> ColumnElement[bool]:
    """A WHERE clause over ``runs``: correlated EXISTS subqueries for metrics, params, tags."""
    if expr is None:
        return true()
    if isinstance(expr, And):
        return and_(*(compile_filter(item) for item in expr.items))
    if isinstance(expr, Or):
        return or_(*(compile_filter(item) for item in expr.items))
    return _compile_comparison(expr)


def _compile_comparison(comparison: Comparison) -> ColumnElement[bool]:
    if comparison.kind == "attribute":
        column = _ATTRIBUTES[comparison.key]
        return _compare(column, comparison.op, comparison.value)
    table = _KEY_VALUE_TABLES[comparison.kind]
    has_key = and_(table.c.run_id == runs.c.id, table.c.key == comparison.key)
    if comparison.op == "is null":
        return ~exists().where(has_key)
    if comparison.op == "is not null":
        return exists().where(has_key)
    return exists().where(has_key, _compare(table.c.value, comparison.op, comparison.value))


def _compare(column: ColumnElement[Any], op: str, value: Value) -> ColumnElement[bool]:
    match op:
        case "=":
            return column == value
        case "!=":
            return column != value
        case "<":
            return column < value
        case "<=":
            return column <= value
        case ">":
            return column > value
        case ">=":
            return column >= value
        case "like":
            return _CaseSensitiveLike(column, literal(value), literal(_glob(str(value))))
        case "ilike":
            return column.ilike(value, escape="\\")
        case "in":
            return column.in_(value)  # type: ignore[arg-type]
        case "not in":
            return column.not_in(value)  # type: ignore[arg-type]
        case "is null":
            return column.is_(None)
        case "is not null":
            return column.is_not(None)
    raise AssertionError(f"unknown operator {op!r}")


class _CaseSensitiveLike(FunctionElement[bool]):
    """``column LIKE pattern``, case-sensitive everywhere. SQLite's LIKE ignores ASCII case,
    so there it compiles to GLOB with the pattern translated (also index-friendly)."""

    type = Boolean()
    inherit_cache = True
    name = "heron_like"


@compiles(_CaseSensitiveLike)
def _like_default(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, pattern, _ = element.clauses
    return compiler.process(column.like(pattern, escape="\\"), **kw)


@compiles(_CaseSensitiveLike, "sqlite")
def _like_sqlite(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, glob = element.clauses
    return compiler.process(column.op("GLOB", is_comparison=True)(glob), **kw)


def _glob(pattern: str) -> str:
    """The GLOB pattern matching what LIKE ``pattern`` (escape ``\\``) matches."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            char = next(chars, "")
        elif char == "%":
            out.append("*")
            continue
        elif char == "_":
            out.append("?")
            continue
        out.append(f"[{char}]" if char in "*?[" else char)
    return "".join(out)


# --- ordering ------------------------------------------------------------------------------


def order_by_clauses(order_by: Sequence[str]) -> list[ColumnElement[Any]]:
    """ORDER BY terms over ``runs`` for terms like ``"metrics.accuracy DESC"``, ``"name"``.

    Runs without the metric or param sort last in either direction, and ``runs.id`` breaks
    ties so pages are stable. No terms means newest first.
    """
    terms: list[ColumnElement[Any]] = []
    for text in order_by:
        kind, key, descending = _parse_order_term(text)
        value = _sort_value(kind, key)
        term = value.desc() if descending else value.asc()
        # Only where a NULL can occur: PostgreSQL reads an index backwards only for the
        # default DESC NULLS FIRST, and knows nothing of NOT NULL when planning that.
        nullable = kind != "attribute" or _ATTRIBUTES[key].nullable
        terms.append(term.nulls_last() if nullable else term)
    if not terms:
        terms.append(runs.c.start_time.desc())
    terms.append(runs.c.id.asc())
    return terms


def _parse_order_term(text: str) -> tuple[Kind, str, bool]:
    parser = _Parser(text, "order_by")
    if parser.peek().kind == "end":
        parser.fail("empty order_by term", parser.peek())
    kind, key = parser.field_name()
    descending = False
    if parser.at_word("asc", "desc"):
        descending = parser.advance().text.lower() == "desc"
    elif parser.peek().kind != "end":
        parser.fail(f"expected ASC or DESC, got {parser.peek().shown()}", parser.peek())
    parser.expect_end()
    return kind, key, descending


def _sort_value(kind: Kind, key: str) -> ColumnElement[Any]:
    if kind == "attribute":
        return _ATTRIBUTES[key]
    table = _KEY_VALUE_TABLES[kind]
    lookup = select(table.c.value).where(table.c.run_id == runs.c.id, table.c.key == key)
    return lookup.scalar_subquery()
