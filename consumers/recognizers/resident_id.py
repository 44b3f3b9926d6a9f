"""Resident identity card numbers (GB 11643-1999): 18 characters, ISO 7064 MOD 11-2 check.

Six-digit region code (its province must exist), birth date YYYYMMDD (a real calendar
date from 1900 on), three-digit sequence, check character 0-9 or X.
"""

from __future__ import annotations

import re
from datetime import date

from consumers.recognizers.base import DIGITS, NOT_BEFORE_ALNUM, Recognizer

_PATTERN = re.compile(
    r"[1-9](?<![0-9A-Za-z][1-9])\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    + NOT_BEFORE_ALNUM
)
_PREFILTER = re.compile(r"\d{17}")
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91}
)
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"


def check_char(body: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK_CHARS[sum(w * (ord(c) - 48) for w, c in zip(_WEIGHTS, body, strict=True)) % 11]


def _birth_date_valid(text: str) -> bool:
    try:
        date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _check(match: re.Match[str]) -> str | None:
    value = match.group().upper()
    if int(value[:2]) not in _PROVINCES or not _birth_date_valid(value[6:14]):
        return None
    return "RESIDENT_ID" if check_char(value[:17]) == value[17] else None


RESIDENT_ID = Recognizer(
    entity="RESIDENT_ID",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=90,
    triggers=DIGITS,
)
