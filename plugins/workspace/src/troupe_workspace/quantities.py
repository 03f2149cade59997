"""Quantities as the API server stores them, so a re-read Deployment matches what was built.

The server rewrites a quantity to its canonical form (2048Mi is stored as 2Gi, 0.5 as 500m); a builder
returning the other spelling would make every reconcile re-apply the object. The schema admits only
unsigned quantities (models.QUANTITY_PATTERN).
"""

from __future__ import annotations

import re
from decimal import Decimal

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SPLIT = re.compile(r"^([0-9.]+)([eE][0-9]+|[KMGTPE]i|[numkMGTPE])?$")


def canonical(quantity: str) -> str:
    """The API server's spelling of ``quantity`` (unchanged when it cannot be read)."""
    match = _SPLIT.match(quantity)
    if not match:
        return quantity
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    if suffix in _BINARY:
        value = number * 1024 ** _BINARY[suffix]
        if value == value.to_integral_value() and value >= 1024:
            whole = int(value)
            for name, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
                if whole % 1024**power == 0:
                    return f"{whole // 1024**power}{name}"
        return decimal_form(value)
    exponent = int(suffix[1:]) if suffix[:1] in ("e", "E") else _DECIMAL[suffix]
    return decimal_form(number * Decimal(10) ** exponent)


def decimal_form(value: Decimal) -> str:
    """The largest decimal SI suffix (down to n) leaving a whole number; rounded up to n otherwise."""
    for name, exponent in sorted(_DECIMAL.items(), key=lambda item: -item[1]):
        mantissa = value / Decimal(10) ** exponent
        if mantissa == mantissa.to_integral_value():
            return f"{int(mantissa)}{name}"
    return f"{int((value / Decimal(10) ** -9).to_integral_value(rounding='ROUND_CEILING'))}n"
