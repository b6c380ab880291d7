"""The derived-metric grammar: what parses, the errors (column + what was expected), and that nothing runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidegauge.expressions import (
    Binary,
    Call,
    Duration,
    ExpressionError,
    Matcher,
    Negate,
    Node,
    Number,
    SeriesSelector,
    parse_expression,
)

EXAMPLE = 'max(sqs_messages{queue="orders"} / 100, aurora_cpu_percent{cluster="orders-db"} / 70)'


def test_the_documented_example_parses_to_its_tree() -> None:
    orders = SeriesSelector("sqs_messages", (Matcher("queue", "=", "orders"),))
    database = SeriesSelector("aurora_cpu_percent", (Matcher("cluster", "=", "orders-db"),))

    assert parse_expression(EXAMPLE) == Call(
        "max", (Binary("/", orders, Number(100.0)), Binary("/", database, Number(70.0)))
    )


def test_precedence_signs_rates_and_projections() -> None:
    node = parse_expression('project(q{a!="b"}[2m], 60s) - -rate(sent[1m]) * 2')

    assert node == Binary(
        "-",
        Call("project", (SeriesSelector("q", (Matcher("a", "!=", "b"),), 120.0), Duration(60.0))),
        Binary("*", Negate(Call("rate", (SeriesSelector("sent", (), 60.0),))), Number(2.0)),
    )


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("max(sqs_messages / 100", 23, "expected ')' closing max("),
        ("sqs_messages{queue=orders}", 20, "expected a double-quoted label value"),
        ("sqs_messages +", 15, "expected a number, a metric, a function"),
        ("rate(sqs_messages)", 18, "expected a range such as [60s]"),
        ("sqs_messages[60s]", 13, "a range [60s] only goes on the selector of rate"),
        ("sqs_messages / 60s", 16, "a duration only goes in a range"),
        ("project(sqs_messages)", 21, "expected ',' then the horizon"),
        ("project(sqs_messages, 60)", 23, "the horizon with a unit"),
        (
            "median(sqs_messages)",
            1,
            "unknown function 'median': expected one of max, min, sum, rate, project",
        ),
        ("1 + 2", 1, "expected at least one metric"),
        ('sqs_messages{queue="orders"', 28, "expected ',' or '}' after a label matcher"),
    ],
)
def test_errors_give_the_column_and_what_was_expected(text: str, column: int, expected: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)

    assert str(caught.value).startswith(f"at column {column}: ")
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os").system("id")',
        "sqs_messages.__class__",
        "().__class__.__bases__",
        'eval("1")',
        'open("/etc/passwd")',
        "lambda: 1",
        "[x for x in sqs_messages]",
        "sqs_messages if 1 else 2",
        "sqs_messages ** 2",
        "sqs_messages[0]",
        "sqs_messages; 1",
        "sqs_messages @ 1",
        "f'{sqs_messages}'",
        "sqs_messages{queue=__import__}",
        "max(sqs_messages, key=len)",
        "0x10 + sqs_messages",
    ],
)
def test_python_syntax_is_a_parse_error(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(text)


def test_nesting_is_bounded_before_pythons_recursion_limit() -> None:
    with pytest.raises(ExpressionError, match="nested more than 32 deep"):
        parse_expression("(" * 1000 + "sqs_messages" + ")" * 1000)
    with pytest.raises(ExpressionError, match="more than 100 operators"):
        parse_expression(" + ".join(["sqs_messages"] * 102))


NODE_TYPES = (Number, Duration, SeriesSelector, Call, Negate, Binary)


def node_types(node: Node) -> bool:
    if isinstance(node, Call):
        return all(node_types(argument) for argument in node.arguments)
    if isinstance(node, Negate):
        return node_types(node.operand)
    if isinstance(node, Binary):
        return node_types(node.left) and node_types(node.right)
    return isinstance(node, NODE_TYPES)


@given(st.text(alphabet=st.sampled_from(list('sqm_ax(){}[]=!",.+-*/ 0123456789_iport')), max_size=60))
def test_any_text_is_a_tree_of_known_nodes_or_an_expression_error(text: str) -> None:
    # GIVEN arbitrary text over the grammar's characters and Python's WHEN parsed
    # THEN only the grammar's nodes come out, or an ExpressionError (never another exception)
    try:
        node = parse_expression(text)
    except ExpressionError:
        return
    assert node_types(node)
