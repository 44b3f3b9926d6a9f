"""Every UUID not labelled as an advertising id becomes `<UUID>`: the privacy-safe choice.

A bare UUID in a log line or URL (a request, trace or device id) is ambiguous: it may
be an IDFA/OAID, and even when it is not it is a linkable pseudonym, which the analyst
stream must not carry (SPEC section 7). So all of them go; `ad_id` (higher priority)
names the labelled ones `<AD_ID>`. The nil UUID names nobody and is left alone.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

_PATTERN = re.compile(
    r"(?<![0-9A-Za-z_-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}"
    r"-[0-9A-Fa-f]{12}(?![0-9A-Za-z_-])"
)
_PREFILTER = re.compile(r"[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-")
_NIL = "00000000-0000-0000-0000-000000000000"


def _check(match: re.Match[str]) -> str | None:
    return None if match.group() == _NIL else "UUID"


UUID = Recognizer(
    entity="UUID",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=20,
    triggers="-",
)
