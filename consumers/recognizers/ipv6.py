"""IPv6 addresses, validated by `ipaddress`, so clock times (`13:54:09`) never pass.

Candidates are runs of hex groups and colons (with an optional dotted IPv4 tail) not
glued to a word, such as C++ scopes (`std::vector`). Loopback `::1` and the
unspecified `::` name nobody.
"""

from __future__ import annotations

import ipaddress
import re

from consumers.recognizers.base import Recognizer

_PATTERN = re.compile(
    r"(?<![0-9A-Za-z_:.])"
    r"(?:[0-9A-Fa-f]{1,4}|(?=:))(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?![0-9A-Za-z_:])(?!\.\d)"
)
_PREFILTER = re.compile(r":[0-9A-Fa-f]{0,4}:")


def _check(match: re.Match[str]) -> str | None:
    try:
        address = ipaddress.IPv6Address(match.group())
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return None
    return "IP"


IPV6 = Recognizer(
    entity="IP",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=40,
    triggers=":",
)
