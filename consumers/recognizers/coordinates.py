"""Latitude/longitude: labelled values (`lat=39.90`, `lng: 116.40`) or a bare decimal pair.

A labelled value needs one decimal; each labelled value becomes its own token. A bare
pair (`39.9042,116.4074`, `(39.9042, 116.4074)`) needs at least four decimals on both
numbers (about 11 m), valid ranges, and must not be part of a longer list of numbers,
so `3.5, 2.1` or a vector `1.23456,2.34567,3.45678` are not coordinates. A token left
by an earlier scrub (`<IP>`) counts as a list item, so scrubbing twice changes nothing.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

_LABELLED = re.compile(
    r"(?<![0-9A-Za-z])(?P<label>lat|latitude|lon|lng|long|longitude)[\"']?\s*+[=:]\s*+[\"']?"
    r"(?P<value>[-+]?\d{1,3}\.\d++)(?![\d.])",
    re.IGNORECASE,
)
_BARE_PAIR = re.compile(
    r"(?<![\w.])(?<![\d>],)(?<![\d>], )"
    r"(?P<lat>[-+]?\d{1,2}\.\d{4,}+)\s?,\s?(?P<lon>[-+]?\d{1,3}\.\d{4,}+)"
    r"(?![\w.])(?!\s?,\s?(?:[-+]?\d|<[A-Z_]++>))"
)
# `{0,6}` covers "itude" / "gitude"; an unbounded `[A-Za-z]*` would rescan a long word
# such as "latlatlat..." from each of its `l`s (quadratic).
_PREFILTER = re.compile(r"\.\d{4}|[lL](?:[aA][tT]|[oO][nN]|[nN][gG])[A-Za-z]{0,6}[\"']?\s*+[=:]")


def _check_labelled(match: re.Match[str]) -> str | None:
    limit = 90.0 if match.group("label").lower().startswith("lat") else 180.0
    return "COORDINATES" if abs(float(match.group("value"))) <= limit else None


def _check_pair(match: re.Match[str]) -> str | None:
    if abs(float(match.group("lat"))) > 90.0 or abs(float(match.group("lon"))) > 180.0:
        return None
    return "COORDINATES"


def _check(match: re.Match[str]) -> str | None:
    if match.re is _LABELLED:
        return _check_labelled(match)
    return _check_pair(match)


COORDINATES = Recognizer(
    entity="COORDINATES",
    patterns=(_LABELLED, _BARE_PAIR),
    check=_check,
    prefilter=_PREFILTER,
    priority=30,
    triggers=".",
)
