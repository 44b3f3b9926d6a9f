"""Each recognizer against a table of valid inputs and look-alikes (checksum-failing, versions)."""

from __future__ import annotations

import pytest

from consumers.recognizers import RECOGNIZERS, Recognizer
from consumers.recognizers.ad_id import AD_ID
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

# --- independent oracles -------------------------------------------------------------


def luhn_check_digit(body: str) -> str:
    """Check digit that makes `body + digit` Luhn-valid (doubling from the right of body)."""
    total = 0
    for offset_from_right, char in enumerate(reversed(body)):
        digit = int(char)
        if offset_from_right % 2 == 0:
            digit = sum(divmod(digit * 2, 10))
        total += digit
    return str((10 - total % 10) % 10)


GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CODES = ("1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2")


def resident_id(body17: str) -> str:
    """An 18-character resident id: `body17` plus its GB 11643 check character."""
    total = sum(int(d) * w for d, w in zip(body17, GB11643_WEIGHTS, strict=True))
    return body17 + GB11643_CODES[total % 11]


def imei(body14: str) -> str:
    """A Luhn-valid 15-digit IMEI from a 14-digit body."""
    return body14 + luhn_check_digit(body14)


def wrong_last(value: str) -> str:
    """`value` with its last character changed, so its checksum fails."""
    return value[:-1] + ("1" if value[-1] != "1" else "2")


def findings(recognizer: Recognizer, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in recognizer.find(text)]


def test_oracles_agree_with_published_examples() -> None:
    assert imei("49015420323751") == "490154203237518"
    assert resident_id("11010519491231002") == "11010519491231002X"


def test_every_recognizer_is_listed_once() -> None:
    listed = [id(r) for r in RECOGNIZERS]
    assert len(listed) == len(set(listed))
    expected = {
        AD_ID, COORDINATES, EMAIL, IMEI, IPV4, IPV6, MAC, PHONE, RESIDENT_ID, UUID, WIFI_SSID
    }  # fmt: skip
    assert {id(r) for r in expected} == set(listed)


# --- IMEI ----------------------------------------------------------------------------

VALID_IMEIS = [
    "490154203237518",
    "356938035643809",
    imei("35209900176148"),
    imei("86012345678901"),
    imei("99000862345678"),
]


@pytest.mark.parametrize("value", VALID_IMEIS)
@pytest.mark.parametrize("template", ["{}", "IMEI: {}", "imei={}&x=1", "设备{}崩溃", "({})"])
def test_luhn_valid_imei_is_found(value: str, template: str) -> None:
    text = template.format(value)
    assert findings(IMEI, text) == [("IMEI", value)]


@pytest.mark.parametrize("value", ["35-209900-176148-1", "35 209900 176148 1", "35209900176148-1"])
def test_grouped_imei_is_found(value: str) -> None:
    assert imei("35209900176148") == "352099001761481"
    assert findings(IMEI, f"dev {value} ok") == [("IMEI", value)]


@pytest.mark.parametrize(
    "text",
    [
        *(wrong_last(v) for v in VALID_IMEIS),
        "000000000000000",  # Luhn-valid but no device
        "49015420323751",  # 14 digits
        "4901542032375180",  # 16 digits
        "order 1490154203237518",  # inside a longer run
        "0x490154203237518",  # inside a hex literal
        "490154203237518.25",  # a decimal amount
        "1732543200000",  # epoch ms
    ],
)
def test_imei_look_alikes_are_not_found(text: str) -> None:
    assert findings(IMEI, text) == []


# --- phone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "13800138000",
        "19912345678",
        "15012345678",
        "138-0013-8000",
        "138 0013 8000",
        "+86 138 0013 8000",
        "+8613800138000",
        "0086-138-0013-8000",
        "8613912345678",
    ],
)
def test_mainland_mobile_number_is_found(value: str) -> None:
    assert findings(PHONE, f"call {value}, thanks") == [("PHONE", value)]


def test_phone_next_to_chinese_text_is_found() -> None:
    assert findings(PHONE, "手机号13800138000已绑定") == [("PHONE", "13800138000")]


@pytest.mark.parametrize(
    "text",
    [
        "12800138000",  # no mobile prefix 12
        "10012345678",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "order 213800138000",
        "1732543200000",  # epoch ms
        "0x13800138000",
        "user13800138000x",
        "13800138000.50",
        "3.13800138000",
    ],
)
def test_phone_look_alikes_are_not_found(text: str) -> None:
    assert findings(PHONE, text) == []


# --- resident id ---------------------------------------------------------------------

VALID_RESIDENT_IDS = [
    "11010519491231002X",
    resident_id("44030420000229123"),  # leap day
    resident_id("31010119851120001"),
    resident_id("65010220101010555"),
]


@pytest.mark.parametrize("value", VALID_RESIDENT_IDS)
def test_checksum_valid_resident_id_is_found(value: str) -> None:
    assert findings(RESIDENT_ID, f"身份证号:{value}。") == [("RESIDENT_ID", value)]


def test_lowercase_check_character_is_found() -> None:
    assert findings(RESIDENT_ID, "id 11010519491231002x") == [("RESIDENT_ID", "11010519491231002x")]


@pytest.mark.parametrize(
    "text",
    [
        *(wrong_last(v) for v in VALID_RESIDENT_IDS),
        resident_id("44030420010229123"),  # 2001-02-29 does not exist
        resident_id("11010519491331002"),  # month 13
        resident_id("99010519491231002"),  # no province 99
        resident_id("11010518491231002"),  # born 1849
        "11010519491231002",  # 17 digits
        resident_id("11010519491231002") + "7",  # 19 characters
    ],
)
def test_resident_id_look_alikes_are_not_found(text: str) -> None:
    assert findings(RESIDENT_ID, text) == []


# --- MAC -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("mac aa:bb:cc:dd:ee:ff up", "aa:bb:cc:dd:ee:ff"),
        ("MAC:3C:22:FB:12:34:56", "3C:22:FB:12:34:56"),
        ("bssid=AA-BB-CC-DD-EE-01", "AA-BB-CC-DD-EE-01"),
        ("iface 0123.4567.89ab", "0123.4567.89ab"),
        ("wifi 02:00:00:00:00:01.", "02:00:00:00:00:01"),
    ],
)
def test_mac_address_is_found(text: str, value: str) -> None:
    assert findings(MAC, text) == [("MAC", value)]


@pytest.mark.parametrize(
    "text",
    [
        "00:00:00:00:00:00",
        "FF:FF:FF:FF:FF:FF",
        "aa:bb:cc:dd:ee",  # five groups
        "gg:bb:cc:dd:ee:ff",  # not hex
        "aa:bb-cc:dd:ee:ff",  # mixed separators
        "at 13:54:09",
        "2026-11-25T13:54:09Z",
        "build 2023.1103.0001",  # dotted, no hex letter
        "0x7fff5fbff8a8",
    ],
)
def test_mac_look_alikes_are_not_found(text: str) -> None:
    assert findings(MAC, text) == []


# --- IP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("client 10.1.2.3 connected", "10.1.2.3"),
        ("ip=192.168.1.20&a=1", "192.168.1.20"),
        ("GET http://203.0.113.7:8080/x", "203.0.113.7"),
        ("from 8.8.8.8.", "8.8.8.8"),
        ("server 1.2.3.4", "1.2.3.4"),
        ("ip=101.6.6.6", "101.6.6.6"),
    ],
)
def test_ipv4_address_is_found(text: str, value: str) -> None:
    assert findings(IPV4, text) == [("IP", value)]


@pytest.mark.parametrize(
    "text",
    [
        "256.1.1.1",
        "1.2.3",
        "v1.2.3.4",
        "version 10.0.0.1",
        "Version: 10.0.0.1",
        "build 1.0.0.12",
        "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36",
        "1.2.3.4.5",
        "127.0.0.1",
        "0.0.0.0",
        "10.0.19045.2006",
        "01.02.03.04",
    ],
)
def test_ipv4_look_alikes_are_not_found(text: str) -> None:
    assert findings(IPV4, text) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("peer 2001:db8::1 up", "2001:db8::1"),
        ("ip=fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a"),
        ("https://[2001:db8:85a3::8a2e:370:7334]:443/", "2001:db8:85a3::8a2e:370:7334"),
        ("mapped ::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("2408:8207:1851:1c30:0:0:0:1", "2408:8207:1851:1c30:0:0:0:1"),
    ],
)
def test_ipv6_address_is_found(text: str, value: str) -> None:
    assert findings(IPV6, text) == [("IP", value)]


@pytest.mark.parametrize(
    "text",
    [
        "at 13:54:09",
        "12:30",
        "2026-11-25T13:54:09Z",
        "13:54:09.123",
        "std::vector<int>::push_back",
        "::1",
        "::",
        "1:2:3:4:5:6:7:8:9",
    ],
)
def test_ipv6_look_alikes_are_not_found(text: str) -> None:
    assert findings(IPV6, text) == []


# --- e-mail --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("to alice@example.com.", "alice@example.com"),
        ("bob.smith+tag@mail.qq.com", "bob.smith+tag@mail.qq.com"),
        ("?email=alice%40example.com&x=1", "alice%40example.com"),
        ("?email=a%2Bb%40example.com", "a%2Bb%40example.com"),
        ("联系user_01@163.com谢谢", "user_01@163.com"),
        ("<13800138000@139.com>", "13800138000@139.com"),
    ],
)
def test_email_is_found(text: str, value: str) -> None:
    assert findings(EMAIL, text) == [("EMAIL", value)]


@pytest.mark.parametrize(
    "text",
    ["icon@2x.png", "logo@1.5x.webp", "left-pad@1.2.3", "user@localhost", "@Override", "a@b"],
)
def test_email_look_alikes_are_not_found(text: str) -> None:
    assert findings(EMAIL, text) == []


# --- coordinates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("at 39.9042,116.4074 now", ["39.9042,116.4074"]),
        ("geo:(39.9042, 116.4074)", ["39.9042, 116.4074"]),
        ("at -33.86882,151.20929", ["-33.86882,151.20929"]),
        ("lat=39.90 lon=116.40", ["39.90", "116.40"]),
        ('{"lat": 39.9042, "lng": 116.4074}', ["39.9042", "116.4074"]),
        ("?latitude=-33.8688&longitude=151.2093", ["-33.8688", "151.2093"]),
    ],
)
def test_coordinates_are_found(text: str, values: list[str]) -> None:
    assert sorted(findings(COORDINATES, text)) == sorted(("COORDINATES", v) for v in values)


@pytest.mark.parametrize(
    "text",
    [
        "3.5, 2.1",
        "39.90,116.40",  # bare pair with too few decimals
        "1.23456,2.34567,3.45678",  # a vector, not a pair
        "91.00001,116.4074",  # latitude out of range
        "39.9042,181.00001",  # longitude out of range
        "lat=39 lon=116",  # labelled but no decimals
        "lat=95.5",
        "version 1.2.3",
        "took 12.3456 s, 7.8901 s",
    ],
)
def test_coordinate_look_alikes_are_not_found(text: str) -> None:
    assert findings(COORDINATES, text) == []


# --- advertising ids and UUIDs -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC", "6D92078A-8246-4BA4-AE5B-76104861E7DC"),
        ("OAID:0123456789abcdef", "0123456789abcdef"),
        (
            '"advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d"',
            "38400000-8cf0-11bd-b23e-10b96e40000d",
        ),
        ("gaid = 38400000-8cf0-11bd-b23e-10b96e40000d", "38400000-8cf0-11bd-b23e-10b96e40000d"),
    ],
)
def test_labelled_advertising_id_is_found(text: str, value: str) -> None:
    assert findings(AD_ID, text) == [("AD_ID", value)]


@pytest.mark.parametrize(
    "text",
    [
        "idfa=00000000-0000-0000-0000-000000000000",
        "oaid=xyz",
        "adid=1234",
        "loaded 0123456789abcdef",
    ],
)
def test_advertising_id_look_alikes_are_not_found(text: str) -> None:
    assert findings(AD_ID, text) == []


def test_unlabelled_uuid_is_found_as_uuid() -> None:
    text = "request 123e4567-e89b-12d3-a456-426614174000 failed"
    assert findings(UUID, text) == [("UUID", "123e4567-e89b-12d3-a456-426614174000")]


@pytest.mark.parametrize(
    "text",
    [
        "00000000-0000-0000-0000-000000000000",
        "123e4567-e89b-12d3-a456-42661417400",  # last group short
        "123e4567-e89b-12d3-a456-426614174000-1",
        "2026-11-25-1234",
    ],
)
def test_uuid_look_alikes_are_not_found(text: str) -> None:
    assert findings(UUID, text) == []
