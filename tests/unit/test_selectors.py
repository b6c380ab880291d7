"""Label selectors: upstream grammar, canonical strings, match semantics and helpful errors."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidegauge.selectors import (
    MAX_REQUIREMENTS,
    MAX_SELECTOR_LENGTH,
    Operator,
    Requirement,
    Selector,
    SelectorError,
    parse_selector,
)

HYPOTHESIS = settings(max_examples=300, deadline=None)


def requirement(key: str, operator: Operator, *values: str) -> Requirement:
    return Requirement(key, operator, frozenset(values))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env=prod", requirement("env", Operator.EQUALS, "prod")),
        ("env==prod", requirement("env", Operator.EQUALS, "prod")),
        ("env!=prod", requirement("env", Operator.NOT_EQUALS, "prod")),
        ("env in (prod,stage)", requirement("env", Operator.IN, "prod", "stage")),
        ("env notin (dev)", requirement("env", Operator.NOT_IN, "dev")),
        ("env", requirement("env", Operator.EXISTS)),
        ("!env", requirement("env", Operator.DOES_NOT_EXIST)),
        ("env=", requirement("env", Operator.EQUALS, "")),
        ("env!=", requirement("env", Operator.NOT_EQUALS, "")),
        ("env in (,prod)", requirement("env", Operator.IN, "", "prod")),
        ("env in (prod,)", requirement("env", Operator.IN, "", "prod")),
        ("env notin ()", requirement("env", Operator.NOT_IN, "")),
        ("env in(prod)", requirement("env", Operator.IN, "prod")),
        ("in in (in,notin)", requirement("in", Operator.IN, "in", "notin")),
        ("example.com/team-name=a_b.c", requirement("example.com/team-name", Operator.EQUALS, "a_b.c")),
        ("app.kubernetes.io/name", requirement("app.kubernetes.io/name", Operator.EXISTS)),
    ],
)
def test_parse_accepts_every_operator(text: str, expected: Requirement) -> None:
    assert parse_selector(text) == Selector((expected,))


@pytest.mark.parametrize(
    "text",
    [
        "env in (prod,stage),queue=worker,!legacy",
        "  env in ( prod , stage ) , queue = worker , ! legacy  ",
        "env\tin\t(prod,stage),\r\nqueue==worker,!legacy",
        "!legacy,queue=worker,env in (stage,prod)",
    ],
)
def test_parse_tolerates_whitespace_and_order(text: str) -> None:
    # GIVEN the same requirements written with different spacing, operators and order
    # WHEN parsed THEN they are the same selector with one canonical form
    selector = parse_selector(text)

    assert str(selector) == "env in (prod,stage),!legacy,queue=worker"


@pytest.mark.parametrize("text", [None, "", "   ", "\t\n"])
def test_absent_or_blank_selector_matches_everything(text: str | None) -> None:
    selector = parse_selector(text)

    assert selector.is_empty
    assert selector.matches({})
    assert selector.matches({"env": "prod"})
    assert str(selector) == ""


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("env=prod", {"env": "prod"}, True),
        ("env=prod", {"env": "dev"}, False),
        ("env=prod", {}, False),
        ("env=", {"env": ""}, True),
        ("env=", {}, False),
        ("env!=prod", {"env": "dev"}, True),
        ("env!=prod", {"env": "prod"}, False),
        ("env!=prod", {}, True),
        ("env in (prod,stage)", {"env": "stage"}, True),
        ("env in (prod,stage)", {"env": "dev"}, False),
        ("env in (prod,stage)", {}, False),
        ("env notin (prod,stage)", {"env": "dev"}, True),
        ("env notin (prod,stage)", {"env": "prod"}, False),
        ("env notin (prod,stage)", {}, True),
        ("env notin ()", {"env": ""}, False),
        ("env notin ()", {"env": "x"}, True),
        ("env", {"env": ""}, True),
        ("env", {"other": "x"}, False),
        ("!env", {"other": "x"}, True),
        ("!env", {"env": ""}, False),
        ("env=prod,queue=worker", {"env": "prod", "queue": "worker", "x": "y"}, True),
        ("env=prod,queue=worker", {"env": "prod"}, False),
    ],
)
def test_matches_follows_kubernetes_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env in prod", 'expected "(" after "in" but found "prod" at position 7'),
        ("in (a)", 'after label key "in" but found "(" at position 3'),
        ("k=v=w", 'expected "," or the end of the selector but found "=" at position 3'),
        (",", 'expected a label key or "!" but found "," at position 0'),
        ("a,", 'expected a label key or "!" but found the end of the selector at position 2'),
        ("k in (a", 'expected "," or ")" in the value list but found the end of the selector at position 7'),
        ("k in (a b)", 'expected "," or ")" in the value list but found "b" at position 8'),
        ("!", 'expected a label key after "!" but found the end of the selector at position 1'),
        ("!k=v", 'after "!k" but found "=" at position 2'),
        ("k v", 'expected an operator (=, ==, !=, in, notin) or "," after label key "k"'),
        ("k>1", 'operator ">" at position 1 is not supported'),
        ("k=(", 'expected a value for label key "k" but found "(" at position 2'),
        ("a" * 64, "the name must be at most 63 characters, not 64"),
        ("k=" + "v" * 64, "a label value must be at most 63 characters, not 64"),
        ("k=pr@d", 'label value "pr@d" at position 2 is not valid'),
        ("-k=v", 'label key "-k" at position 0 is not valid'),
        ("a/b/c", 'may contain at most one "/"'),
        ("/name", 'the prefix before "/" must not be empty'),
        ("prefix/", 'a label key must have a name after "/"'),
        ("Example.com/name", "must be a DNS subdomain"),
        ("k=\x00", 'label value "\\u0000" at position 2'),
    ],
)
def test_malformed_selector_raises_a_helpful_error(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        parse_selector(text)

    assert str(raised.value).startswith("invalid label selector ")
    assert message in str(raised.value)


def test_error_message_carries_no_python_internals() -> None:
    with pytest.raises(SelectorError) as raised:
        parse_selector("env in (prod,stage) x")

    assert str(raised.value) == (
        'invalid label selector "env in (prod,stage) x": '
        'expected "," or the end of the selector but found "x" at position 20'
    )


def test_overlong_selector_is_rejected_before_parsing() -> None:
    text = ",".join(["k=v"] * 2000)

    with pytest.raises(SelectorError, match=f"more than the limit of {MAX_SELECTOR_LENGTH}"):
        parse_selector(text)


def test_too_many_requirements_are_rejected() -> None:
    assert len(parse_selector(",".join(["k"] * MAX_REQUIREMENTS)).requirements) == MAX_REQUIREMENTS

    with pytest.raises(SelectorError, match=f"more than {MAX_REQUIREMENTS} requirements"):
        parse_selector(",".join(["k"] * (MAX_REQUIREMENTS + 1)))


@pytest.mark.parametrize(
    ("key", "operator", "values", "message"),
    [
        ("k", Operator.IN, (), "values set can't be empty"),
        ("k", Operator.NOT_IN, (), "values set can't be empty"),
        ("k", Operator.EQUALS, ("a", "b"), "exactly one value"),
        ("k", Operator.EXISTS, ("a",), "take no values"),
        ("bad key", Operator.EXISTS, (), "the name must consist of"),
        ("k", Operator.EQUALS, ("bad value",), 'value "bad value"'),
    ],
)
def test_requirement_rejects_invalid_construction(
    key: str, operator: Operator, values: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SelectorError, match=message):
        Requirement(key, operator, frozenset(values))


def test_str_gives_upstream_canonical_form() -> None:
    selector = parse_selector("z notin (b,a),!y,x==1,w!=2,v in (c,a,b),u")

    assert str(selector) == "u,v in (a,b,c),w!=2,x=1,!y,z notin (a,b)"


def test_from_labels_builds_an_equality_selector() -> None:
    selector = Selector.from_labels({"queue": "orders", "env": ""})

    assert str(selector) == "env=,queue=orders"
    assert selector.matches({"queue": "orders", "env": "", "extra": "x"})
    assert not selector.matches({"queue": "orders"})
    with pytest.raises(SelectorError):
        Selector.from_labels({"bad key": "x"})


def test_selector_equality_ignores_requirement_order() -> None:
    first, second = requirement("a", Operator.EXISTS), requirement("b", Operator.EXISTS)

    assert Selector((second, first)) == Selector((first, second))
    assert hash(Selector((second, first))) == hash(Selector((first, second)))


# Property tests: generated selectors against an independent reference of the Kubernetes semantics.

label_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)
dns_subdomains = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?){0,3}", fullmatch=True
)
label_keys = st.one_of(
    label_names,
    st.builds(lambda prefix, name: f"{prefix}/{name}", dns_subdomains, label_names),
    st.sampled_from(["in", "notin"]),
)
label_values = st.one_of(st.just(""), label_names, st.sampled_from(["in", "notin"]))


@st.composite
def requirements(
    draw: st.DrawFn, keys: st.SearchStrategy[str] = label_keys, values: st.SearchStrategy[str] = label_values
) -> Requirement:
    operator = draw(st.sampled_from(Operator))
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        chosen: frozenset[str] = frozenset()
    elif operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        chosen = frozenset((draw(values),))
    else:
        chosen = draw(st.frozensets(values, min_size=1, max_size=4))
    return Requirement(draw(keys), operator, chosen)


selectors = st.lists(requirements(), max_size=8).map(lambda items: Selector(tuple(items)))


@st.composite
def spaced_text(draw: st.DrawFn, selector: Selector) -> str:
    """Write ``selector`` by hand with random whitespace wherever upstream's lexer allows it."""

    def gap(required: bool = False) -> str:
        return draw(st.text(alphabet=" \t\r\n", min_size=1 if required else 0, max_size=3))

    parts = []
    for item in selector.requirements:
        key, values = item.key, sorted(item.values)
        if item.operator is Operator.EXISTS:
            text = key
        elif item.operator is Operator.DOES_NOT_EXIST:
            text = f"!{gap()}{key}"
        elif item.operator in (Operator.EQUALS, Operator.NOT_EQUALS):
            symbol = "!=" if item.operator is Operator.NOT_EQUALS else draw(st.sampled_from(["=", "=="]))
            text = f"{key}{gap()}{symbol}{gap()}{values[0]}"
        else:
            word = "in" if item.operator is Operator.IN else "notin"
            listed = f"{gap()},{gap()}".join(draw(st.permutations(values)))
            text = f"{key}{gap(required=True)}{word}{gap()}({gap()}{listed}{gap()})"
        parts.append(f"{gap()}{text}{gap()}")
    return ",".join(parts)


def reference_matches(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    """Kubernetes semantics spelled out as set logic, independently of the module under test."""
    present = requirement.key in labels
    value = labels.get(requirement.key)
    match requirement.operator:
        case Operator.EXISTS:
            return present
        case Operator.DOES_NOT_EXIST:
            return not present
        case Operator.EQUALS | Operator.IN:
            return present and value in requirement.values
        case Operator.NOT_EQUALS | Operator.NOT_IN:
            return not present or value not in requirement.values
    raise AssertionError(requirement.operator)


@HYPOTHESIS
@given(selectors)
def test_string_form_round_trips(selector: Selector) -> None:
    assert parse_selector(str(selector)) == selector


@HYPOTHESIS
@given(st.data())
def test_extra_whitespace_does_not_change_the_selector(data: st.DataObject) -> None:
    selector = data.draw(selectors)
    text = data.draw(spaced_text(selector))

    assert parse_selector(text) == selector


small_keys = st.sampled_from(["env", "queue", "in", "example.com/team"])
small_values = st.sampled_from(["", "prod", "stage", "in"])


@HYPOTHESIS
@given(
    st.lists(requirements(small_keys, small_values), max_size=4),
    st.dictionaries(small_keys, small_values, max_size=4),
)
def test_matches_agrees_with_reference_semantics(items: list[Requirement], labels: dict[str, str]) -> None:
    # GIVEN requirements parsed back from text, so parsing and matching are checked together
    selector = parse_selector(str(Selector(tuple(items))))
    expected = all(reference_matches(item, labels) for item in items)

    assert selector.matches(labels) is expected
    for item in items:
        assert item.matches(labels) is reference_matches(item, labels)
