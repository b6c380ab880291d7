"""The grammar of derived metrics: a hand-written recursive-descent parser into frozen syntax nodes.

Hand-written rather than a parser library: the grammar is a dozen rules, a library (lark, pyparsing)
would be a new dependency of the server image and of every collector cold start that validates a
config, and its errors would need translating into "at column N: expected X" anyway. Nothing is ever
evaluated as Python: the parser only builds the nodes below, and any other syntax (attribute access,
subscripts, unknown functions such as ``__import__``, keywords) is a parse error.

Grammar (whitespace between tokens is free)::

    expression     := additive END
    additive       := multiplicative (("+" | "-") multiplicative)*
    multiplicative := unary (("*" | "/") unary)*
    unary          := "-" unary | primary
    primary        := NUMBER | DURATION | "(" additive ")" | call | selector
    call           := FUNCTION "(" additive ("," additive)* ")"
    selector       := METRIC ("{" [matcher ("," matcher)* [","]] "}")? ("[" DURATION "]")?
    matcher        := LABEL ("=" | "!=") STRING
    FUNCTION       := max | min | sum | rate | project
    DURATION       := NUMBER ("s" | "m" | "h")          e.g. 60s, 5m, 1.5h
    STRING         := '"' characters, with \\" and \\\\ escaped '"'

Where each may appear: ``rate(selector[DURATION])``; ``project(selector, DURATION)`` or
``project(selector[DURATION], DURATION)`` (window, then horizon); a DURATION nowhere else; a range
``[DURATION]`` only on the selector of ``rate`` or ``project``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from tidegauge import names
from tidegauge.errors import UsageError

MAX_EXPRESSION_LENGTH: Final = 4096
MAX_DEPTH: Final = 32
"""Nesting of parentheses, calls and signs: deeper is refused before Python's own recursion limit."""
MAX_SELECTORS: Final = 64
MAX_OPERATORS: Final = 100
"""Binary operators in one expression: evaluation recurses once per operator."""
MAX_RANGE_SECONDS: Final = 86_400.0
AGGREGATIONS: Final = ("max", "min", "sum")
FUNCTIONS: Final = (*AGGREGATIONS, "rate", "project")
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0}

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]*")
_SPACE = re.compile(r"[ \t\r\n]*")


class ExpressionError(UsageError, ValueError):
    """An expression that does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, position: int, problem: str) -> None:
        self.position = position
        self.problem = problem
        super().__init__(f"at column {position + 1}: {problem}")


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Duration:
    seconds: float


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    operator: str
    """``=`` or ``!=``."""
    value: str


@dataclass(frozen=True, slots=True)
class SeriesSelector:
    """``metric{label="value", …}``, optionally with a range ``[60s]`` (for rate and project)."""

    metric: str
    matchers: tuple[Matcher, ...] = ()
    range_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    arguments: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    operator: str
    """``+``, ``-``, ``*`` or ``/``."""
    left: Node
    right: Node


Node: TypeAlias = Number | Duration | SeriesSelector | Call | Negate | Binary


def selectors_of(node: Node) -> list[SeriesSelector]:
    """Every selector of an expression, in reading order."""
    return [selector for selector, _ in selector_uses(node)]


def selector_uses(node: Node, around: Call | None = None) -> list[tuple[SeriesSelector, Call | None]]:
    """Every selector of an expression in reading order, with the ``rate``/``project`` call reading it
    (None elsewhere): ``tidegauge explain`` shows those inputs as the function of their history."""
    if isinstance(node, SeriesSelector):
        return [(node, around)]
    if isinstance(node, Call):
        inner = node if node.function in ("rate", "project") else None
        return [found for argument in node.arguments for found in selector_uses(argument, inner)]
    if isinstance(node, Negate):
        return selector_uses(node.operand)
    if isinstance(node, Binary):
        return selector_uses(node.left) + selector_uses(node.right)
    return []


def parse_expression(text: str) -> Node:
    """The syntax tree of ``text``; :class:`ExpressionError` says where and what was expected."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(MAX_EXPRESSION_LENGTH, f"longer than {MAX_EXPRESSION_LENGTH} characters")
    parser = _Parser(text)
    node = parser.additive()
    parser.end()
    if not selectors_of(node):
        raise ExpressionError(0, "expected at least one metric (a constant is not a metric)")
    if len(selectors_of(node)) > MAX_SELECTORS:
        raise ExpressionError(0, f"more than {MAX_SELECTORS} metric selectors")
    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.depth = 0
        self.operators = 0

    # -- scanning ----------------------------------------------------------------------------------

    def _skip(self) -> None:
        match = _SPACE.match(self.text, self.position)
        if match is not None:
            self.position = match.end()

    def _peek(self) -> str:
        self._skip()
        return self.text[self.position : self.position + 1]

    def _found(self) -> str:
        self._skip()
        if self.position >= len(self.text):
            return "the end"
        return repr(self.text[self.position : self.position + 12])

    def _fail(self, expected: str, at: int | None = None) -> ExpressionError:
        if at is not None:
            self.position = at
        return ExpressionError(self.position, f"expected {expected}, found {self._found()}")

    def _accept(self, token: str) -> bool:
        if self.text.startswith(token, self._skip_position()):
            self.position += len(token)
            return True
        return False

    def _skip_position(self) -> int:
        self._skip()
        return self.position

    def _expect(self, token: str, expected: str) -> None:
        if not self._accept(token):
            raise self._fail(expected)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(self.position, f"nested more than {MAX_DEPTH} deep")

    def _operator(self) -> str:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise ExpressionError(self.position, f"more than {MAX_OPERATORS} operators")
        operator = self.text[self.position]
        self.position += 1
        return operator

    def end(self) -> None:
        if self._peek():
            raise self._fail("an operator (+ - * /) or the end of the expression")

    # -- rules -------------------------------------------------------------------------------------

    def additive(self) -> Node:
        node = self.multiplicative()
        while self._peek() in ("+", "-"):
            node = Binary(self._operator(), node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self._peek() in ("*", "/"):
            node = Binary(self._operator(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self._accept("-"):
            self._enter()
            node: Node = Negate(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        start = self._skip_position()
        if self._accept("("):
            self._enter()
            node = self.additive()
            self._expect(")", "')'")
            self.depth -= 1
            return node
        number = _NUMBER.match(self.text, start)
        if number is not None:
            node = self._number_or_duration(number)
            if isinstance(node, Duration):
                raise ExpressionError(
                    start, "a duration only goes in a range [60s] or as the horizon of project(…, 60s)"
                )
            return node
        word = _WORD.match(self.text, start)
        if word is None:
            raise self._fail("a number, a metric, a function (max, min, sum, rate, project) or '('")
        self.position = word.end()
        if self._peek() == "(":
            return self._call(word.group(), start)
        return self._selector(word.group(), start)

    def _number_or_duration(self, match: re.Match[str]) -> Node:
        self.position = match.end()
        value = float(match.group())
        unit = self.text[self.position : self.position + 1]
        if unit in _UNITS and not _WORD.match(self.text, self.position + 1):
            self.position += 1
            return Duration(value * _UNITS[unit])
        if _WORD.match(self.text, self.position):
            raise self._fail("an operator after the number (durations take s, m or h)")
        return Number(value)

    def _duration(self, what: str) -> float:
        start = self._skip_position()
        match = _NUMBER.match(self.text, start)
        if match is None:
            raise self._fail(f"{what} (a duration such as 60s, 5m or 1h)")
        node = self._number_or_duration(match)
        if not isinstance(node, Duration):
            raise self._fail(f"{what} with a unit (s, m or h), e.g. 60s", at=start)
        if not 0 < node.seconds <= MAX_RANGE_SECONDS:
            raise ExpressionError(start, f"{what} must be above 0 and at most 24h")
        return node.seconds

    def _call(self, function: str, start: int) -> Node:
        if function not in FUNCTIONS:
            raise ExpressionError(
                start, f"unknown function {function!r}: expected one of {', '.join(FUNCTIONS)}"
            )
        self._expect("(", "'('")
        self._enter()
        if function == "rate":
            node: Node = Call(function, (self._ranged_selector("rate", required=True),))
        elif function == "project":
            series = self._ranged_selector("project", required=False)
            self._expect(",", "',' then the horizon, e.g. project(sqs_messages{queue=\"orders\"}, 60s)")
            node = Call(function, (series, Duration(self._duration("the horizon"))))
        else:
            arguments = [self.additive()]
            while self._accept(","):
                arguments.append(self.additive())
            node = Call(function, tuple(arguments))
        self._expect(")", f"')' closing {function}(")
        self.depth -= 1
        return node

    def _ranged_selector(self, function: str, *, required: bool) -> SeriesSelector:
        start = self._skip_position()
        word = _WORD.match(self.text, start)
        if word is None or word.group() in FUNCTIONS:
            example = "rate(metric[60s])" if required else "project(metric, 60s)"
            raise self._fail(f"a metric selector as the first argument of {function}, e.g. {example}")
        self.position = word.end()
        node = self._selector(word.group(), start, ranged=True)
        if required and node.range_seconds is None:
            raise self._fail(f"a range such as [60s] after the selector of {function}")
        return node

    def _selector(self, metric: str, start: int, *, ranged: bool = False) -> SeriesSelector:
        if not names.METRIC_NAME.accepts(metric):
            raise ExpressionError(start, f"{metric!r} is not a metric name: {names.METRIC_NAME.fix}")
        matchers: list[Matcher] = []
        if self._accept("{"):
            while self._peek() != "}":
                matchers.append(self._matcher())
                if not self._accept(","):
                    break
            self._expect("}", "',' or '}' after a label matcher")
        range_seconds = None
        if self._peek() == "[" and not ranged:
            raise ExpressionError(
                self.position, "a range [60s] only goes on the selector of rate(…) or project(…)"
            )
        if self._accept("["):
            range_seconds = self._duration("a range")
            self._expect("]", "']' closing the range")
        return SeriesSelector(metric, tuple(matchers), range_seconds)

    def _matcher(self) -> Matcher:
        start = self._skip_position()
        label = _LABEL.match(self.text, start)
        if label is None:
            raise self._fail('a label matcher such as queue="orders"')
        if not names.LABEL_KEY.accepts(label.group()):
            raise ExpressionError(start, f"{label.group()!r} is not a label key: {names.LABEL_KEY.fix}")
        self.position = label.end()
        if self._accept("!="):
            operator = "!="
        elif self._accept("="):
            operator = "="
        else:
            raise self._fail("'=' or '!=' after the label")
        return Matcher(label.group(), operator, self._string())

    def _string(self) -> str:
        start = self._skip_position()
        if not self._accept('"'):
            raise self._fail('a double-quoted label value, e.g. "orders"')
        characters: list[str] = []
        while self.position < len(self.text):
            character = self.text[self.position]
            self.position += 1
            if character == '"':
                value = "".join(characters)
                if value and not names.LABEL_VALUE.accepts(value):
                    raise ExpressionError(start, f"{value!r} is not a label value: {names.LABEL_VALUE.fix}")
                return value
            if character == "\\":
                escaped = self.text[self.position : self.position + 1]
                if escaped not in ('"', "\\"):
                    raise ExpressionError(self.position - 1, 'expected \\" or \\\\ inside a string')
                character = escaped
                self.position += 1
            characters.append(character)
        raise ExpressionError(start, "expected a closing '\"' for this string")
