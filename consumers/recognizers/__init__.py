"""The recognizers `consumers.scrub` runs, listed once, in one explicit tuple.

Adding a recognizer is one small module (its pattern beside its validation) plus one
line in `RECOGNIZERS`. The priority of each breaks ties between overlapping findings
of equal length: the more specific entity wins.
"""

from __future__ import annotations

from consumers.recognizers.ad_id import AD_ID
from consumers.recognizers.base import Finding, Recognizer
from consumers.recognizers.coordinates import COORDINATES
from consumers.recognizers.email_address import EMAIL
from consumers.recognizers.imei import IMEI
from consumers.recognizers.ipv4 import IPV4
from consumers.recognizers.ipv6 import IPV6
from consumers.recognizers.mac import MAC
from consumers.recognizers.phone import PHONE
from consumers.recognizers.plain_uuid import UUID
from consumers.recognizers.resident_id import RESIDENT_ID
from consumers.recognizers.wifi_ssid import WIFI_SSID

RECOGNIZERS: tuple[Recognizer, ...] = (
    RESIDENT_ID,
    EMAIL,
    IMEI,
    AD_ID,
    PHONE,
    MAC,
    IPV4,
    IPV6,
    COORDINATES,
    UUID,
    WIFI_SSID,
)

__all__ = ["RECOGNIZERS", "Finding", "Recognizer"]
