"""Kubernetes label selectors: parse them as k8s.io/apimachinery ``labels.Parse`` does, and match label sets.

The HPA forwards a metric's selector in the ``labelSelector`` query parameter; the server must apply it
exactly, because the HPA sums every returned item.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from tidegauge import names
from tidegauge.errors import UsageError
from tidegauge.names import MAX_LABEL_NAME_LENGTH, MAX_LABEL_PREFIX_LENGTH, MAX_LABEL_VALUE_LENGTH

MAX_SELECTOR_LENGTH = 4096
MAX_REQUIREMENTS = 100
_TOKEN_PATTERN = re.compile(r"[ \t\r\n]*(?:(==|!=|[=!(),<>])|([^ \t\r\n=!(),<>]+))?")
_SHOWN_SELECTOR_LENGTH = 200
_SHOWN_TOKEN_LENGTH = 70

_Matcher = Callable[[Mapping[str, str]], bool]


class SelectorError(UsageError, ValueError):
    """A label selector that cannot be parsed or a requirement that is not valid; a client error (400)."""


class Operator(enum.Enum):
    """How a requirement relates a label key to its values (upstream ``selection.Operator``)."""

    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a selector, validated as upstream's ``NewRequirement``; ``matches`` is precomputed."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()
    _match: _Matcher = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        values = frozenset(self.values)
        object.__setattr__(self, "values", values)
        problem = _key_problem(self.key) or _arity_problem(self.operator, values)
        if problem is None:
            problem = next(
                (f"value {_quote(value)}: {p}" for value in values if (p := _value_problem(value))), None
            )
        if problem is not None:
            raise SelectorError(f"invalid label requirement on key {_quote(self.key)}: {problem}")
        object.__setattr__(self, "_match", _build_matcher(self.key, self.operator, values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement; ``!=`` and ``notin`` match an absent key."""
        return self._match(labels)

    def __str__(self) -> str:
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key
        if operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if operator is Operator.EQUALS:
            return f"{self.key}={next(iter(self.values))}"
        if operator is Operator.NOT_EQUALS:
            return f"{self.key}!={next(iter(self.values))}"
        return f"{self.key} {operator.value} ({','.join(sorted(self.values))})"

    def _sort_key(self) -> tuple[str, str]:
        return (self.key, str(self))


@dataclass(frozen=True, slots=True)
class Selector:
    """All requirements must match (none: everything matches); kept sorted, so equal means same."""

    requirements: tuple[Requirement, ...] = ()
    _matchers: tuple[_Matcher, ...] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        requirements = tuple(sorted(self.requirements, key=Requirement._sort_key))
        object.__setattr__(self, "requirements", requirements)
        object.__setattr__(self, "_matchers", tuple(requirement._match for requirement in requirements))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Selector:
        """An equality selector that matches label sets containing all of ``labels``."""
        return cls(
            tuple(Requirement(key, Operator.EQUALS, frozenset((value,))) for key, value in labels.items())
        )

    @property
    def is_empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        # A plain loop: all() over a generator is ~70% slower on this per-series hot path.
        for match in self._matchers:  # noqa: SIM110
            if not match(labels):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


EVERYTHING = Selector()


def parse_selector(text: str | None) -> Selector:
    """Parse a decoded selector such as ``env in (prod,stage),queue=worker``; None or "" selects all."""
    if not text:
        return EVERYTHING
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(
            f"invalid label selector: it is {len(text)} characters long, more than the limit of "
            f"{MAX_SELECTOR_LENGTH}"
        )
    return Selector(tuple(_Parser(text).requirements()))


def _build_matcher(key: str, operator: Operator, values: frozenset[str]) -> _Matcher:
    if operator is Operator.EXISTS:
        return lambda labels: key in labels
    if operator is Operator.DOES_NOT_EXIST:
        return lambda labels: key not in labels
    if len(values) == 1:
        (value,) = values
        if operator is Operator.NOT_EQUALS or operator is Operator.NOT_IN:
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if operator is Operator.NOT_IN:
        return lambda labels: labels.get(key) not in values
    return lambda labels: labels.get(key) in values


def _arity_problem(operator: Operator, values: frozenset[str]) -> str | None:
    if operator in (Operator.IN, Operator.NOT_IN):
        return None if values else "for 'in', 'notin' operators, values set can't be empty"
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        return None if len(values) == 1 else "'=', '==' and '!=' need exactly one value"
    return "'exists' and '!' take no values" if values else None


def _key_problem(key: str) -> str | None:
    """Why ``key`` is not a qualified name (``[prefix/]name``), or None if it is one."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if "/" in prefix:
            return 'a label key may contain at most one "/"'
        if not prefix:
            return 'the prefix before "/" must not be empty'
        if len(prefix) > MAX_LABEL_PREFIX_LENGTH:
            return f'the prefix before "/" must be at most {MAX_LABEL_PREFIX_LENGTH} characters'
        if not names.DNS_SUBDOMAIN.accepts(prefix):
            return (
                'the prefix before "/" must be a DNS subdomain: lowercase letters, digits, "-" and ".", '
                "starting and ending with a letter or digit"
            )
    if not name:
        return "a label key must have a name" + (' after "/"' if slash else "")
    if len(name) > MAX_LABEL_NAME_LENGTH:
        return f"the name must be at most {MAX_LABEL_NAME_LENGTH} characters, not {len(name)}"
    if not names.LABEL_NAME.accepts(name):
        return (
            'the name must consist of letters, digits, "-", "_" or ".", '
            "and start and end with a letter or digit"
        )
    return None


def _value_problem(value: str) -> str | None:
    """Why ``value`` is not a label value, or None if it is one (the empty string is one)."""
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        return f"a label value must be at most {MAX_LABEL_VALUE_LENGTH} characters, not {len(value)}"
    if not names.LABEL_VALUE.accepts(value):
        return (
            'a label value must be empty or consist of letters, digits, "-", "_" or ".", '
            "and start and end with a letter or digit"
        )
    return None


def _quote(text: str, limit: int = _SHOWN_TOKEN_LENGTH) -> str:
    """Double-quote ``text`` for a message, shortened and with unprintable characters made visible."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if not text.isprintable():
        text = "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in text)
    return f'"{text}"'


class _Kind(enum.Enum):
    WORD = "word"
    COMMA = ","
    OPEN = "("
    CLOSE = ")"
    BANG = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"
    END = "end"


_SYMBOLS = {kind.value: kind for kind in _Kind if kind not in (_Kind.WORD, _Kind.END)}
_EXACT_OPERATORS = {
    _Kind.EQUALS: Operator.EQUALS,
    _Kind.DOUBLE_EQUALS: Operator.EQUALS,
    _Kind.NOT_EQUALS: Operator.NOT_EQUALS,
}
_SET_OPERATORS = {"in": Operator.IN, "notin": Operator.NOT_IN}


class _Token(NamedTuple):
    kind: _Kind
    text: str
    position: int


def _tokens(text: str) -> Iterator[_Token]:
    """Split as upstream's lexer: words end at whitespace or one of ``=!(),<>``; ``==`` and ``!=`` are one."""
    position = 0
    while True:
        match = _TOKEN_PATTERN.match(text, position)
        assert match is not None  # the pattern can match the empty string
        symbol, word = match.group(1), match.group(2)
        if symbol is not None:
            yield _Token(_SYMBOLS[symbol], symbol, match.start(1))
        elif word is not None:
            yield _Token(_Kind.WORD, word, match.start(2))
        else:
            yield _Token(_Kind.END, "", len(text))
            return
        position = match.end()


class _Parser:
    """Recursive descent over upstream's grammar; every error names the offending token and its position."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = list(_tokens(text))
        self._index = 0

    def requirements(self) -> Iterator[Requirement]:
        if self._peek().kind is _Kind.END:
            return
        count = 0
        while True:
            count += 1
            if count > MAX_REQUIREMENTS:
                raise self._error(
                    f"more than {MAX_REQUIREMENTS} requirements; the one beyond the limit starts "
                    f"{_at(self._peek())}"
                )
            yield self._requirement()
            token = self._next()
            if token.kind is _Kind.END:
                return
            if token.kind is not _Kind.COMMA:
                raise self._unexpected('"," or the end of the selector', token)

    def _requirement(self) -> Requirement:
        token = self._next()
        negated = token.kind is _Kind.BANG
        if negated:
            token = self._next()
        if token.kind is not _Kind.WORD:
            raise self._unexpected('a label key after "!"' if negated else 'a label key or "!"', token)
        key = token.text
        if problem := _key_problem(key):
            raise self._error(f"label key {_quote(key)} {_at(token)} is not valid: {problem}")
        following = self._peek()
        if following.kind in (_Kind.END, _Kind.COMMA):
            return Requirement(key, Operator.DOES_NOT_EXIST if negated else Operator.EXISTS)
        if negated:
            raise self._unexpected(f'"," or the end of the selector after "!{key}"', following)
        operator = self._next()
        if operator.kind is _Kind.WORD and operator.text in _SET_OPERATORS:
            return Requirement(key, _SET_OPERATORS[operator.text], self._value_set(operator.text))
        if operator.kind in _EXACT_OPERATORS:
            return Requirement(key, _EXACT_OPERATORS[operator.kind], self._exact_value(key))
        if operator.kind in (_Kind.GREATER, _Kind.LESS):
            raise self._error(
                f'operator "{operator.text}" {_at(operator)} is not supported; '
                "use =, ==, !=, in, notin, a bare key or !key"
            )
        raise self._unexpected(
            f'an operator (=, ==, !=, in, notin) or "," after label key {_quote(key)}', operator
        )

    def _exact_value(self, key: str) -> frozenset[str]:
        if self._peek().kind in (_Kind.END, _Kind.COMMA):
            return frozenset(("",))
        token = self._next()
        if token.kind is not _Kind.WORD:
            raise self._unexpected(f"a value for label key {_quote(key)}", token)
        return frozenset((self._value(token),))

    def _value_set(self, operator: str) -> frozenset[str]:
        """Values of ``(a,b)``; as upstream, an empty item (``(,a)``, ``()``) is the empty value."""
        token = self._next()
        if token.kind is not _Kind.OPEN:
            raise self._unexpected(f'"(" after "{operator}"', token)
        values: set[str] = set()
        while True:
            token = self._next()
            if token.kind is _Kind.WORD:
                values.add(self._value(token))
                token = self._next()
            else:
                values.add("")
            if token.kind is _Kind.CLOSE:
                return frozenset(values)
            if token.kind is not _Kind.COMMA:
                raise self._unexpected('"," or ")" in the value list', token)

    def _value(self, token: _Token) -> str:
        if problem := _value_problem(token.text):
            raise self._error(f"label value {_quote(token.text)} {_at(token)} is not valid: {problem}")
        return token.text

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind is not _Kind.END:
            self._index += 1
        return token

    def _unexpected(self, expected: str, token: _Token) -> SelectorError:
        found = "the end of the selector" if token.kind is _Kind.END else _quote(token.text)
        return self._error(f"expected {expected} but found {found} {_at(token)}")

    def _error(self, problem: str) -> SelectorError:
        return SelectorError(
            f"invalid label selector {_quote(self._text, _SHOWN_SELECTOR_LENGTH)}: {problem}"
        )


def _at(token: _Token) -> str:
    return f"at position {token.position}"
