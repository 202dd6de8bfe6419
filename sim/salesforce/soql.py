"""A small SOQL subset: enough for an integration that looks records up by id or by field.

    SELECT f1, f2 | COUNT() FROM Type
        [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST]] [LIMIT n] [OFFSET n]

``cond`` combines ``f = v``, ``f != v`` (also ``<>``), ``<``, ``<=``, ``>``, ``>=``,
``f [NOT] IN (v, ...)``, ``f LIKE 'pat%'`` with AND, OR, NOT and parentheses. Values are
quoted strings, numbers, true/false, null, and bare date/datetime literals. String
comparisons ignore case, as SOQL's do. Anything else is MALFORMED_QUERY. ``parse`` checks
only syntax; the caller resolves the type and field names against the schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.salesforce.errors import malformed_query
from sim.salesforce.schema import normalize_id

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<date>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))?)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by",
             "asc", "desc", "limit", "offset", "nulls", "first", "last", "null", "true",
             "false", "count"}


@dataclass(frozen=True)
class Token:
    kind: str  # string | date | number | op | punct | word | end
    text: str
    value: Any = None

    def is_word(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


# A condition is a predicate over a record's values, built once per query.
Condition = Callable[[dict[str, Any]], bool]


@dataclass
class Query:
    sobject: str
    fields: list[str]  # empty for COUNT()
    count_only: bool
    where: Condition | None
    where_fields: list[str]
    order_by: tuple[str, bool, bool] | None  # field, descending, nulls_last
    limit: int | None
    offset: int


def _unescape(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise malformed_query(f"unexpected token: '{text[pos:pos + 20]}'")
        kind = match.lastgroup or ""
        raw = match.group()
        pos = match.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token(kind, raw, _unescape(raw)))
        elif kind == "number":
            tokens.append(Token(kind, raw, float(raw) if "." in raw else int(raw)))
        elif kind == "date":
            tokens.append(Token(kind, raw, raw))
        else:
            tokens.append(Token(kind, raw))
    tokens.append(Token("end", "<end>"))
    return tokens


def _as_id(key: str, literal: Any) -> Any:
    """A 15-character id literal compared with Id means the same record as its 18-char form."""
    if key == "id" and isinstance(literal, str):
        return normalize_id(literal) or literal
    return literal


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})$")


def _instant(text: str) -> datetime | None:
    """A datetime literal or stored datetime as an instant: SOQL compares datetimes by time,
    whatever their written form (2024-05-01T09:30:00Z = 2024-05-01T09:30:00.000+0000)."""
    if not _STAMP.match(text):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _comparable(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def compare(actual: Any, op: str, literal: Any) -> bool:
    """SOQL comparison of a stored value with a literal (null-aware, case-insensitive)."""
    if literal is None or actual is None:
        same = actual is None and literal is None
        return same if op == "=" else (not same) if op in ("!=", "<>") else False
    if isinstance(literal, bool) or isinstance(actual, bool):
        equal = actual == literal
    else:
        if isinstance(literal, int | float) and isinstance(actual, str):
            try:
                actual = float(actual)
            except ValueError:
                return op in ("!=", "<>")
        left, right = _comparable(actual), _comparable(literal)
        if isinstance(actual, str) and isinstance(literal, str):
            instants = _instant(actual), _instant(literal)
            if instants[0] is not None and instants[1] is not None:
                left, right = instants
        try:
            if op == "<":
                return bool(left < right)
            if op == "<=":
                return bool(left <= right)
            if op == ">":
                return bool(left > right)
            if op == ">=":
                return bool(left >= right)
        except TypeError:
            return False
        equal = left == right
    return equal if op == "=" else not equal


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.where_fields: list[str] = []

    @property
    def current(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self) -> Exception:
        return malformed_query(f"unexpected token: '{self.current.text}'")

    def expect_word(self, word: str) -> None:
        if not self.current.is_word(word):
            raise self.fail()
        self.advance()

    def expect_punct(self, char: str) -> None:
        if self.current.kind != "punct" or self.current.text != char:
            raise self.fail()
        self.advance()

    def identifier(self) -> str:
        token = self.current
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            raise self.fail()
        self.advance()
        return token.text

    def literal(self) -> Any:
        token = self.current
        if token.kind in ("string", "number", "date"):
            self.advance()
            return token.value
        for word, value in (("null", None), ("true", True), ("false", False)):
            if token.is_word(word):
                self.advance()
                return value
        raise self.fail()

    def parse(self) -> Query:
        self.expect_word("select")
        fields: list[str] = []
        count_only = False
        if self.current.is_word("count") and self.tokens[self.pos + 1].text == "(":
            self.advance()
            self.expect_punct("(")
            self.expect_punct(")")
            count_only = True
        else:
            fields.append(self.identifier())
            while self.current.text == ",":
                self.advance()
                fields.append(self.identifier())
        self.expect_word("from")
        sobject = self.identifier()
        where = None
        if self.current.is_word("where"):
            self.advance()
            where = self.disjunction()
        order_by = None
        if self.current.is_word("order"):
            self.advance()
            self.expect_word("by")
            order_field = self.identifier()
            descending = False
            if self.current.is_word("asc") or self.current.is_word("desc"):
                descending = self.advance().text.lower() == "desc"
            nulls_last = descending
            if self.current.is_word("nulls"):
                self.advance()
                if not (self.current.is_word("first") or self.current.is_word("last")):
                    raise self.fail()
                nulls_last = self.advance().text.lower() == "last"
            order_by = (order_field, descending, nulls_last)
        limit = self.count_clause("limit")
        offset = self.count_clause("offset") or 0
        if self.current.kind != "end":
            raise self.fail()
        return Query(sobject, fields, count_only, where, self.where_fields, order_by, limit,
                     offset)

    def count_clause(self, word: str) -> int | None:
        if not self.current.is_word(word):
            return None
        self.advance()
        token = self.advance()
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
            raise malformed_query(f"unexpected token: '{token.text}'")
        return int(token.value)

    def disjunction(self) -> Condition:
        parts = [self.conjunction()]
        while self.current.is_word("or"):
            self.advance()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Condition:
        parts = [self.negation()]
        while self.current.is_word("and"):
            self.advance()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Condition:
        if self.current.is_word("not"):
            self.advance()
            inner = self.negation()
            return lambda r: not inner(r)
        if self.current.text == "(":
            self.advance()
            inner = self.disjunction()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Condition:
        name = self.identifier()
        self.where_fields.append(name)
        key = name.lower()
        negate = False
        if self.current.is_word("not"):
            self.advance()
            negate = True
            if not self.current.is_word("in"):
                raise self.fail()
        if self.current.is_word("in"):
            self.advance()
            self.expect_punct("(")
            values = [self.literal()]
            while self.current.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            values = [_as_id(key, v) for v in values]
            return lambda r: negate != any(compare(r.get(key), "=", v) for v in values)
        if self.current.is_word("like"):
            self.advance()
            token = self.advance()
            if token.kind != "string":
                raise malformed_query(f"unexpected token: '{token.text}'")
            regex = _like_regex(token.value)
            return lambda r: isinstance(r.get(key), str) and bool(regex.fullmatch(r[key]))
        if self.current.kind != "op":
            raise self.fail()
        op = self.advance().text
        value = _as_id(key, self.literal())
        return lambda r: compare(r.get(key), op, value)


def parse(text: str) -> Query:
    """Parse a query; raises ``SfError`` MALFORMED_QUERY on anything outside the subset.

    The ``where`` predicate reads record values by *lower-cased* field name.
    """
    return _Parser(text).parse()
