"""Advertising ids (IDFA / OAID / GAID / AAID) named by a label: `idfa=`, `"oaid": "..."`.

The value is a UUID or, for some OAID vendors, a 16 to 64 digit hex string. Only the
value is replaced, the label stays. Unlabelled UUIDs are the `plain_uuid` recognizer's;
the nil UUID (iOS reports it when tracking is limited) names nobody and is left alone.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

# The pattern starts at the `=` / `:` (cheap to scan for); the label is checked behind it.
_PATTERN = re.compile(
    r"[=:]\s*+[\"']?(?P<value>[0-9A-Fa-f][0-9A-Fa-f-]{14,62}[0-9A-Fa-f])(?![0-9A-Za-z_-])"
)
_LABEL_BEFORE = re.compile(
    r"(?<![0-9A-Za-z])(?:idfa|oaid|gaid|aaid|adid|ad_id|ad-id|advertising_?id|advertisingid)"
    r"[\"']?\s*+$",
    re.IGNORECASE,
)
_LABEL_CHARS = 20
_PREFILTER = re.compile(r"[=:][\"' ]*+[0-9A-Fa-f]{8}")


def _check(match: re.Match[str]) -> str | None:
    start = match.start()
    if _LABEL_BEFORE.search(match.string, max(0, start - _LABEL_CHARS), start) is None:
        return None
    return "AD_ID" if match.group("value").strip("0-") else None  # all zeros: the nil UUID


AD_ID = Recognizer(
    entity="AD_ID",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=65,
    triggers="=:",
)
