"""LogQL, structurally: the part of Loki's query language the kit writes (a
stream selector, then a pipeline of line filters, parsers and label filters),
parsed into what the tests check.

No LogQL parser installs here (Loki's is Go), so this one follows Loki's
documented grammar for log queries and refuses whatever it does not know
rather than guess: a query it accepts has a well-formed selector and
pipeline, though Loki may still judge its meaning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|[|=<>{},()])
  | (?P<number>\d+(?:\.\d+)?(?:ns|us|ms|s|m|h|d|w|y|[KMGTP]i?B|B)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
SELECTOR_OPS = ("=", "!=", "=~", "!~")
LINE_FILTERS = ("|=", "!=", "|~", "!~")
NUMERIC_OPS = ("==", "!=", ">", ">=", "<", "<=")
# Parsers that take no argument, and those that take a pattern string.
PARSERS = ("json", "logfmt", "unpack")
PATTERN_PARSERS = ("pattern", "regexp")
FORMATTERS = ("line_format",)
JOINS = ("and", "or", ",")


class LogQLError(ValueError):
    """The text is no LogQL log query this module knows."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int


@dataclass(frozen=True)
class Matcher:
    """``label op "value"``: in the stream selector, or a label filter after it."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class LogQuery:
    selector: tuple[Matcher, ...]
    line_filters: tuple[tuple[str, str], ...]
    parsers: tuple[str, ...]
    label_filters: tuple[Matcher, ...]

    @property
    def stream_labels(self) -> dict[str, tuple[str, str]]:
        """The selector's matchers: label -> (operator, value)."""
        return {m.label: (m.op, m.value) for m in self.selector}


def tokens(text: str) -> Iterator[Token]:
    at = 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None:
            raise LogQLError(f"unexpected {text[at : at + 10]!r} at {at} in {text!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            yield Token(kind, match.group(), at)
        at = match.end()


def unquote(token: Token) -> str:
    if token.text.startswith("`"):
        return token.text[1:-1]
    return re.sub(r"\\(.)", r"\1", token.text[1:-1])


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = list(tokens(text))
        self.at = 0

    def peek(self) -> Token | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def next_is(self, *texts: str) -> bool:
        token = self.peek()
        return token is not None and token.text in texts

    def take(self, *texts: str, kind: str | None = None) -> Token:
        token = self.peek()
        if token is None or (texts and token.text not in texts) or (kind and token.kind != kind):
            wanted = " or ".join(map(repr, texts)) if texts else kind
            found = "the end" if token is None else repr(token.text)
            raise LogQLError(f"expected {wanted}, found {found} in {self.text!r}")
        self.at += 1
        return token

    def matcher(self, ops: tuple[str, ...]) -> Matcher:
        label = self.take(kind="word").text
        op = self.take(*ops).text
        token = self.peek()
        # != compares strings and numbers alike; the other operators one of them.
        numeric = op in NUMERIC_OPS and (
            op != "!=" or (token is not None and token.kind == "number")
        )
        if numeric:
            value = self.take(kind="number").text
        else:
            value = unquote(self.take(kind="string"))
            if op in ("=~", "!~"):
                _regex(value, self.text)
        return Matcher(label, op, value)


def _regex(pattern: str, text: str) -> None:
    try:
        re.compile(pattern.replace("$", "x"))  # a Grafana $variable stands for a value
    except re.error as error:
        raise LogQLError(f"bad regex {pattern!r} in {text!r}: {error}") from None


def parse(text: str) -> LogQuery:
    """``text`` as a log query; LogQLError when it is none."""
    reader = _Reader(text)
    reader.take("{")
    selector = [reader.matcher(SELECTOR_OPS)]
    while reader.next_is(","):
        reader.take(",")
        selector.append(reader.matcher(SELECTOR_OPS))
    reader.take("}")
    if not any(m.op in ("=", "=~") and m.value for m in selector):
        raise LogQLError(f"the selector must match some stream positively: {text!r}")

    line_filters: list[tuple[str, str]] = []
    parsers: list[str] = []
    label_filters: list[Matcher] = []
    while (token := reader.peek()) is not None:
        if token.text in LINE_FILTERS:
            op = reader.take().text
            value = unquote(reader.take(kind="string"))
            if op.endswith("~"):
                _regex(value, text)
            line_filters.append((op, value))
            continue
        reader.take("|")
        stage = reader.take(kind="word")
        if stage.text in PARSERS:
            parsers.append(stage.text)
        elif stage.text in PATTERN_PARSERS or stage.text in FORMATTERS:
            reader.take(kind="string")
            parsers.append(stage.text)
        else:
            reader.at -= 1  # a label filter: its first word is the label
            label_filters.append(reader.matcher(SELECTOR_OPS + NUMERIC_OPS))
            while reader.next_is(*JOINS):
                reader.take()
                label_filters.append(reader.matcher(SELECTOR_OPS + NUMERIC_OPS))
    for matcher in (*selector, *label_filters):
        if not LABEL.match(matcher.label):
            raise LogQLError(f"bad label name {matcher.label!r} in {text!r}")
    return LogQuery(tuple(selector), tuple(line_filters), tuple(parsers), tuple(label_filters))
