"""IMEI: 15 digits whose last is the Luhn check digit of the first 14.

Written plain (`490154203237518`) or grouped as AA-BBBBBB-CCCCCC-D with dashes or
spaces, or as the 14-digit body and its check digit (`49015420323751-8`).
"""

from __future__ import annotations

import re

from consumers.recognizers.base import DIGITS, NOT_BEFORE_ALNUM, Recognizer

_PATTERN = re.compile(
    # the boundary check follows the first digit so the regex engine can skip to digits
    r"\d(?<![0-9A-Za-z]\d)\d[- ]?\d{6}[- ]?\d{6}[- ]?\d" + NOT_BEFORE_ALNUM + r"(?!\.\d)"
)
_PREFILTER = re.compile(r"\d{6}")
_SEPARATORS = str.maketrans("", "", "- ")


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _check(match: re.Match[str]) -> str | None:
    digits = match.group().translate(_SEPARATORS)
    if digits.count("0") == len(digits) or not luhn_valid(digits):
        return None
    return "IMEI"


IMEI = Recognizer(
    entity="IMEI",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=70,
    triggers=DIGITS,
)
