"""IPv4 addresses, validated by `ipaddress`, that are not version strings.

A dotted quad glued to a letter or another dotted part (`v1.2.3.4`, `1.2.3.4.5`) or
right after a version label or a product token (`version 10.0.0.1`,
`Chrome/120.0.0.0`) is a version. Loopback and the unspecified address name nobody.
"""

from __future__ import annotations

import ipaddress
import re

from consumers.recognizers.base import Recognizer

_PATTERN = re.compile(
    r"\d(?<![0-9A-Za-z_.]\d)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![0-9A-Za-z_])(?!\.\d)"
)
_PREFILTER = re.compile(r"\d\.\d{1,3}\.\d")
_VERSION_CONTEXT = re.compile(
    r"\b(?:v|ver|version|build|release|firmware|rom|sdk|chrome|crios|firefox|fxios|safari"
    r"|applewebkit|gecko|edg|edge|opr|opera|mozilla|okhttp|dalvik|cfnetwork|darwin)"
    r"\s*+(?:[:=/]\s*+)?$",
    re.IGNORECASE,
)
_CONTEXT_CHARS = 16


def _check(match: re.Match[str]) -> str | None:
    try:
        address = ipaddress.IPv4Address(match.group())
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return None
    start = match.start()
    if _VERSION_CONTEXT.search(match.string, max(0, start - _CONTEXT_CHARS), start):
        return None
    return "IP"


IPV4 = Recognizer(
    entity="IP",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=40,
    triggers=".",
)
