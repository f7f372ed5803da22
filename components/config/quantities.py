"""Kubernetes resource quantities ("250m", "1.5", "512Mi", "2G") parsed exactly.

Config validation uses these to reject quantities the API server would reject, to catch
the classic unit mistakes (a CPU in "Gi", memory in "m" = millibytes) and to compare
requests with limits. No Pulumi import: builders and the config model both use it.
"""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}

# The API server's grammar: sign, digits with an optional fraction, then a binary suffix,
# a decimal suffix or a decimal exponent.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


class QuantityError(ValueError):
    """A string that is not a valid (or sensible) Kubernetes quantity."""


def parse_quantity(text: str) -> tuple[Decimal, str]:
    """Return (value in base units, suffix) of a Kubernetes quantity, or raise QuantityError."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix], suffix
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix], suffix
    return number * (Decimal(10) ** int(suffix[1:])), suffix  # exponent form, e.g. "1e3"


def normalize_quantity(value: object) -> str:
    """Accept a YAML number or a string and return the quantity as the API's string form."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, str):
        return value.strip()
    raise QuantityError(f"{value!r} is not a Kubernetes quantity")


def cpu_cores(value: str) -> Decimal:
    """Parse a CPU quantity into cores; binary suffixes are refused as almost certainly a typo."""
    amount, suffix = parse_quantity(value)
    if suffix in _BINARY:
        raise QuantityError(f"{value!r} uses a memory unit for CPU; write cores as '0.5' or millicores as '500m'")
    if amount <= 0:
        raise QuantityError(f"{value!r} must be greater than zero, e.g. '250m'")
    if amount < Decimal("0.001"):
        raise QuantityError(f"{value!r} is below the 1m (one millicore) precision Kubernetes keeps")
    return amount


def memory_bytes(value: str) -> Decimal:
    """Parse a memory quantity into bytes; 'm' (millibytes) and fractional bytes are refused."""
    amount, suffix = parse_quantity(value)
    if suffix in ("m", "u", "n"):
        number = value.strip()[: -len(suffix)]
        raise QuantityError(f"{value!r} means {amount} bytes ('{suffix}' is a milli/micro/nano unit); "
                            f"did you mean '{number}Mi'?")
    if amount <= 0:
        raise QuantityError(f"{value!r} must be greater than zero, e.g. '256Mi'")
    if amount != amount.to_integral_value():
        raise QuantityError(f"{value!r} is not a whole number of bytes; use a unit such as '512Mi' or '1Gi'")
    return amount
