"""Canonical Kubernetes quantities: contract examples, rounding, limits, and agreement with the client."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity

from tidegauge.quantity import QuantityError, format_quantity, milli_value

HYPOTHESIS = settings(max_examples=300, deadline=None)
CANONICAL = re.compile(r"^-?(0|[1-9][0-9]*)(n|u|m|k|M|G|T|P|E)?$")
NANO = Decimal("1e-9")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, "500m"),
        (1.5, "1500m"),
        (1, "1"),
        (1500, "1500"),
        (2000, "2k"),
        (2.5e6, "2500k"),
        (3e9, "3G"),
        (0, "0"),
        (-2, "-2"),
        (-0.5, "-500m"),
        (1e-9, "1n"),
        (1e-10, "1n"),
        (1.0000000001, "1000000001n"),
        (1000, "1k"),
        (1_000_000, "1M"),
        (0.001, "1m"),
        (0.0015, "1500u"),
        (0.1, "100m"),
        (1e15, "1P"),
        (-0.0, "0"),
        (Decimal("1250"), "1250"),
        (Decimal("0.000000001"), "1n"),
        (Decimal("12.5e3"), "12500"),
    ],
)
def test_format_quantity_gives_the_canonical_form(value: float | int | Decimal, expected: str) -> None:
    assert format_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-1e-10, "0"),
        (Decimal("-1.0000000001"), "-1"),
        (Decimal("-0.0000000015"), "-1n"),
        (Decimal("0.0000000015"), "2n"),
    ],
)
def test_fractions_below_one_nano_round_toward_positive_infinity(
    value: Decimal | float, expected: str
) -> None:
    assert format_quantity(value) == expected


def test_floats_are_read_by_their_shortest_decimal_form() -> None:
    # GIVEN 0.1, whose binary expansion is 0.1000000000000000055...
    # THEN it is 100m, not the 100000001n its exact binary value would round up to
    assert format_quantity(0.1) == "100m"
    assert format_quantity(0.1 + 0.2) == "300000001n"


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        (float("nan"), "nan", "not a finite number"),
        (float("inf"), "inf", "not a finite number"),
        (float("-inf"), "-inf", "not a finite number"),
        (Decimal("NaN"), "NaN", "not a finite number"),
        (Decimal("-Infinity"), "-Infinity", "not a finite number"),
        (9.2e15, "9200000000000000.0", "magnitude must be below 9.2e15"),
        (-9.2e15, "-9200000000000000.0", "magnitude must be below 9.2e15"),
        (10**19, "10000000000000000000", "magnitude must be below 9.2e15"),
        (Decimal("9.2e15"), "9.2E+15", "magnitude must be below 9.2e15"),
    ],
)
def test_values_without_a_quantity_form_are_refused(
    value: float | int | Decimal, shown: str, reason: str
) -> None:
    with pytest.raises(QuantityError) as raised:
        format_quantity(value)
    with pytest.raises(QuantityError):
        milli_value(value)

    assert f"cannot express {shown} as a Kubernetes quantity" in str(raised.value)
    assert reason in str(raised.value)


def test_largest_allowed_value_is_accepted() -> None:
    assert format_quantity(Decimal("9199999999999999.999999999")) == "9199999999999999999999999n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1000),
        (0.5, 500),
        (0.0015, 2),
        (1e-10, 1),
        (-0.0015, -1),
        (-2, -2000),
        (0, 0),
        (Decimal("1.0001"), 1001),
    ],
)
def test_milli_value_is_the_ceiling_of_thousandths(value: float | int | Decimal, expected: int) -> None:
    assert milli_value(value) == expected


def ceil_to_nano(value: Decimal) -> Decimal:
    return value.quantize(NANO, rounding=ROUND_CEILING)


def assert_canonical(text: str) -> None:
    match = CANONICAL.fullmatch(text)
    assert match is not None, text
    mantissa, suffix = int(match.group(1)), match.group(2) or ""
    if mantissa == 0:
        assert text == "0"
    elif suffix != "E":
        assert mantissa % 1000 != 0, f"{text} has a larger suffix that keeps the mantissa whole"


finite_floats = st.floats(min_value=-9.1e15, max_value=9.1e15, allow_nan=False, allow_infinity=False)
small_floats = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
fine_decimals = st.decimals(
    min_value=Decimal("-9.1e15"),
    max_value=Decimal("9.1e15"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)


@HYPOTHESIS
@given(st.one_of(finite_floats, small_floats))
def test_floats_parse_back_as_their_ceiling_at_one_nano(value: float) -> None:
    text = format_quantity(value)

    assert_canonical(text)
    assert parse_quantity(text) == ceil_to_nano(Decimal(repr(value)))


@HYPOTHESIS
@given(fine_decimals)
def test_decimals_parse_back_as_their_ceiling_at_one_nano(value: Decimal) -> None:
    text = format_quantity(value)

    assert_canonical(text)
    assert parse_quantity(text) == ceil_to_nano(value)


@HYPOTHESIS
@given(st.one_of(finite_floats, small_floats, fine_decimals))
def test_milli_value_is_what_the_hpa_reads_from_the_string(value: float | Decimal) -> None:
    exact = parse_quantity(format_quantity(value))

    assert milli_value(value) == int((exact * 1000).to_integral_value(rounding=ROUND_CEILING))
