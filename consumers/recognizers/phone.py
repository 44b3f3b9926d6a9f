"""Mainland China mobile numbers: 1[3-9] and nine digits, optional +86 / 0086 / 86 prefix.

Separators may be single spaces or dashes (`138 0013 8000`, `+86-138-0013-8000`). A
number inside a longer run of digits or letters (an order id, an epoch time, a hash)
is not a phone number, nor is one glued to a decimal part.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import DIGITS, NOT_AFTER_ALNUM, NOT_BEFORE_ALNUM, Recognizer

_PATTERN = re.compile(
    NOT_AFTER_ALNUM
    + r"(?<!\d\.)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
    + NOT_BEFORE_ALNUM
    + r"(?!\.\d)"
)
_PREFILTER = re.compile(r"1[3-9]\d[ -]?\d{4}")


def _check(match: re.Match[str]) -> str | None:
    return "PHONE"


PHONE = Recognizer(
    entity="PHONE",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=60,
    triggers=DIGITS,
)
