"""Wi-Fi network names (SSIDs) after a label: `SSID=HomeNet`, `ssid: "Zhang 5G"`, `wifi=A1`.

An SSID is free text chosen by its owner (often a family name or a flat
number) and names an access point, so it is location-grade data (SPEC 2).
Without a label nothing marks a word as an SSID, so only labelled values are
taken: the label stays, the value is replaced.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

_LABEL = r"(?i)\b(?:ssid|wifi|wi-fi|wlan|network[ _]name)\s*+[:=]\s*+"
_PATTERNS = (
    re.compile(_LABEL + r"\"(?P<value>[^\"\n<>]{1,32})\""),
    re.compile(_LABEL + r"'(?P<value>[^'\n<>]{1,32})'"),
    re.compile(_LABEL + r"(?P<value>[^\s,;&\"'<>]{1,32})"),
)
_PREFILTER = re.compile(r"(?i)ssid|wi-?fi|wlan|network[ _]name")


def _check(match: re.Match[str]) -> str | None:
    value = match.group("value")
    if value.lower() in {"on", "off", "true", "false", "none", "null", "connected"}:
        return None
    return "WIFI_SSID"


WIFI_SSID = Recognizer(
    entity="WIFI_SSID",
    patterns=_PATTERNS,
    check=_check,
    prefilter=_PREFILTER,
    priority=15,
)
