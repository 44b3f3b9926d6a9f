"""E-mail addresses, also percent-encoded in URLs (`alice%40example.com`).

The domain must end in an alphabetic top-level label, so `pkg@1.2.3` and
`user@localhost` are not addresses; image scale suffixes (`icon@2x.png`) are not
either, while a real domain such as `0x.com` is.
"""

from __future__ import annotations

import re

from consumers.recognizers.base import Recognizer

# The domain's `(?:\.label)*` is the one repeat allowed to give characters back: its last
# label may be the top-level domain. Each label starts with `.`, which no label holds, and
# only bounded items follow, so giving back costs one step per label (base.py, rule 1).
_PATTERN = re.compile(
    r"(?<![0-9A-Za-z._%+-])(?:[0-9A-Za-z._+-]|%(?!40)[0-9A-Fa-f]{2})++(?:@|%40)"
    r"(?P<domain>[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?"
    r"(?:\.[0-9A-Za-z](?:[0-9A-Za-z-]{0,61}[0-9A-Za-z])?)*\.[A-Za-z]{2,24})"
    r"(?![0-9A-Za-z-])"
)
_PREFILTER = re.compile(r"@|%40")
_SCALE_SUFFIX = re.compile(r"\A\d++(?:\.\d++)?x\.(?:png|jpe?g|gif|webp|svg|avif)$", re.IGNORECASE)


def _check(match: re.Match[str]) -> str | None:
    if _SCALE_SUFFIX.match(match.group("domain")):
        return None
    return "EMAIL"


EMAIL = Recognizer(
    entity="EMAIL",
    patterns=(_PATTERN,),
    check=_check,
    prefilter=_PREFILTER,
    priority=80,
    triggers="@%",
)
