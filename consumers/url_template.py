"""URL templating: keep scheme, host and path shape; replace id-like parts; cut query and fragment.

"https://m.example.cn/user/12345/orders?id=9#x" -> "https://m.example.cn/user/{id}/orders".
A path segment (or host label) is id-like when it is all digits, a UUID, a long hex string,
carries an e-mail address, five or more digits (phones, IMEIs, order numbers) or looks like
an opaque token. Matrix parameters (";jsessionid=...") and user info are removed, IP-literal
hosts become `{ip}`. Anything that does not parse as scheme://host/... gives None.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import unquote, urlsplit

ID_TOKEN = "{id}"
IP_TOKEN = "{ip}"
MAX_URL_LENGTH = 8192
MIN_DIGITS_FOR_ID = 5
MIN_TOKEN_LENGTH = 20

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_LONG_HEX = re.compile(r"(?=[a-f]*[0-9])[0-9a-f]{12,}", re.I)
_TOKEN = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_~+=.-]+")
_HOST = re.compile(r"[\w.-]+")
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def is_id_like(segment: str) -> bool:
    """Whether one decoded path segment or host label looks like an identifier or contact."""
    if not segment:
        return False
    if segment.isdigit() or "@" in segment:
        return True
    if sum(char.isdigit() for char in segment) >= MIN_DIGITS_FOR_ID:
        return True
    if _UUID.fullmatch(segment) or _LONG_HEX.fullmatch(segment):
        return True
    return len(segment) >= MIN_TOKEN_LENGTH and _TOKEN.fullmatch(segment) is not None


@lru_cache(maxsize=16384)
def _template_segment(segment: str) -> str:
    """One path segment with matrix parameters removed, or `{id}` when id-like."""
    segment = segment.split(";", 1)[0]
    return ID_TOKEN if is_id_like(unquote(segment, errors="replace")) else segment


@lru_cache(maxsize=4096)
def _template_host(host: str) -> str | None:
    """The host with id-like labels replaced, `{ip}` for an IP literal, None if malformed."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return IP_TOKEN
    if not _HOST.fullmatch(host):
        return None
    return ".".join(ID_TOKEN if is_id_like(label) else label for label in host.split("."))


def url_template(url: str) -> str | None:
    """The template of `url`, or None when it is not an absolute scheme://host URL."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or _BAD_CHARS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not scheme or not host:
        return None
    host_template = _template_host(host)
    if host_template is None:
        return None
    netloc = host_template if port is None else f"{host_template}:{port}"
    path = "/".join(_template_segment(segment) for segment in parts.path.split("/"))
    return f"{scheme}://{netloc}{path}"
