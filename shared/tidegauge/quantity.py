"""Numbers as canonical Kubernetes ``resource.Quantity`` strings, and the milli-values the HPA reads.

Values are first rounded toward +infinity to a multiple of 1n (10^-9), the finest step a Quantity keeps.
Upstream's ``ParseQuantity`` instead rounds a finer *magnitude* up, so it sends -0.5n to -1n where this
module gives 0; the two agree for every value >= 0 and for every multiple of 1n. Ceiling is used for both
signs so the rounding is monotonic, never reports less than the input, and matches ``MilliValue``
(``ceil(q * 1000)``); the strings produced are exact multiples of 1n, so the HPA parses them unchanged.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal

QUANTITY_LIMIT = Decimal("9.2e15")
"""Exclusive bound on magnitude: the HPA's int64 milli-value (about 9.22e18 / 1000) must not overflow."""

_SUFFIXES = ("n", "u", "m", "", "k", "M", "G", "T", "P", "E")
_NANO = Decimal("1e-9")
# Wide enough for 9.2e15 with nine fractional digits, whatever the caller's decimal context is.
_CONTEXT = Context(prec=40, rounding=ROUND_CEILING)


class QuantityError(ValueError):
    """A number that has no Kubernetes quantity form: NaN, infinite, or too large for the HPA."""


def format_quantity(value: float | int | Decimal) -> str:
    """Canonical DecimalSI form: integer mantissa, largest suffix that keeps it whole (1.5 -> ``1500m``)."""
    nanos = int(_checked(value).quantize(_NANO, context=_CONTEXT).scaleb(9, context=_CONTEXT))
    if nanos == 0:
        return "0"
    mantissa, step = abs(nanos), 0
    while step < len(_SUFFIXES) - 1 and mantissa % 1000 == 0:
        mantissa //= 1000
        step += 1
    sign = "-" if nanos < 0 else ""
    return f"{sign}{mantissa}{_SUFFIXES[step]}"


def milli_value(value: float | int | Decimal) -> int:
    """``ceil(value * 1000)``: the HPA's ``Quantity.MilliValue()`` of ``format_quantity(value)``."""
    milli = _checked(value).scaleb(3, context=_CONTEXT)
    return int(milli.to_integral_value(rounding=ROUND_CEILING, context=_CONTEXT))


def _checked(value: float | int | Decimal) -> Decimal:
    """``value`` as an exact Decimal (a float by its shortest repr, so 0.1 stays 0.1), within the limits."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        raise QuantityError(f"cannot express {value} as a Kubernetes quantity: it is not a number")
    if not number.is_finite():
        raise QuantityError(f"cannot express {value} as a Kubernetes quantity: it is not a finite number")
    if number.copy_abs() >= QUANTITY_LIMIT:
        raise QuantityError(
            f"cannot express {value} as a Kubernetes quantity: its magnitude must be below 9.2e15 "
            "so that the HPA's int64 milli-value does not overflow"
        )
    return number


_PARSE_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity string (``500m``, ``2k``, ``1Gi``, ``1e3``, ``1.5``) as an exact Decimal."""
    stripped = text.strip()
    number = stripped.rstrip("KMGTPEkmuni")
    suffix = stripped[len(number) :]
    if suffix not in _PARSE_SUFFIXES or not number:
        # An exponent form (1e3, 2E-3) has no suffix; "E" alone is exa.
        number, suffix = stripped, ""
    try:
        value = Decimal(number)
    except ArithmeticError as error:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2k, 1Gi)") from error
    if not value.is_finite():
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2k, 1Gi)")
    return value * _PARSE_SUFFIXES[suffix]
