"""MAC addresses in colon, dash (`aa:bb:cc:dd:ee:ff`, `AA-BB-...`) or Cisco dot notation.

All-zero and broadcast (all-FF) addresses name no device and are left alone. The dot
notation (`0123.4567.89ab`) must hold a hex letter, so build numbers such as
`2023.1103.0001` are not taken for MAC addresses.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

_HEX2 = r"[0-9A-Fa-f]{2}"
_COLON_OR_DASH = re.compile(
    r"(?<![0-9A-Za-z_-])"
    + _HEX2
    + r"([:-])"
    + _HEX2
    + r"(?:\1"
    + _HEX2
    + r"){4}(?![0-9A-Za-z_-])(?!:[0-9A-Fa-f])"
)
_DOT = re.compile(
    r"(?<![0-9A-Za-z_.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
    r"(?![0-9A-Za-z_])(?!\.[0-9A-Za-z])"
)
_PREFILTER = re.compile(r"[:-][0-9A-Fa-f]{2}[:-]|\.[0-9A-Fa-f]{4}\.")
_NOT_HEX_DIGIT = str.maketrans("", "", ":-.")
_NO_DEVICE = frozenset({"000000000000", "FFFFFFFFFFFF"})


def _check(match: re.Match[str]) -> str | None:
    value = match.group()
    hex_digits = value.translate(_NOT_HEX_DIGIT).upper()
    if hex_digits in _NO_DEVICE:
        return None
    if "." in value and hex_digits.isdigit():
        return None
    return "MAC"


MAC = Recognizer(
    entity="MAC",
    patterns=(_COLON_OR_DASH, _DOT),
    check=_check,
    prefilter=_PREFILTER,
    priority=50,
    triggers=":-.",
)
