"""scrub(): precision on technical text, recall on realistic logs and URLs, invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.recognizers import RECOGNIZERS, Finding
from consumers.scrub import CleanTextMemo, ScrubResult, find, resolve_overlaps, scrub


def luhn_check_digit(body: str) -> str:
    """Check digit that makes `body + digit` Luhn-valid (independent of the code under test)."""
    total = 0
    for offset_from_right, char in enumerate(reversed(body)):
        digit = int(char)
        if offset_from_right % 2 == 0:
            digit = sum(divmod(digit * 2, 10))
        total += digit
    return str((10 - total % 10) % 10)


PRECISION = [
    "app version 1.2.3 on Windows 10.0.19045",
    "upgraded from v2.10.4 to v2.11.0-beta.3",
    "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 Chrome/120.0.0.0",
    "at 2026-11-25T13:54:09Z took 13:54:09.123 wall",
    "event_time=1732543200000 seq=1732543200001",
    "epoch seconds 1732543200 micros 1732543200000000",
    "HTTP 404 after 3 retries, status=500",
    "order total ¥1380.00, 12 items, qty 3.5, 2.1 kg",
    "#0 0x00007fff5fbff8a8 in main () at main.c:42",
    "SIGSEGV at pc 0x7fff5fbff8a8 sp=0x16fdff1e0 lr=0x1a2b3c4d",
    "java.lang.NullPointerException\n\tat com.example.app.Main.onCreate(Main.java:128)",
    "std::vector<int>::push_back failed at 12:30",
    "build 2023.1103.0001 sha 3f786850e387550fdab836ed7e6dc881de23001b",
    "icon@2x.png loaded, left-pad@1.2.3 resolved, user@localhost",
    "listening on 127.0.0.1:8080 and ::1 and 0.0.0.0",
    "idfa=00000000-0000-0000-0000-000000000000",
    "matrix 1.23456,2.34567,3.45678 scale 0.5",
    "battery 87%, signal -95 dBm, free 10240 MB, 1080x2400 6.67in",
    "屏幕分辨率 1080x2400, 系统版本 14.0.1",
    "",
]


@pytest.mark.parametrize("text", PRECISION)
def test_technical_text_comes_back_unchanged(text: str) -> None:
    result = scrub(text)
    assert result.found == {}
    assert result.text is text


RECALL = [
    (
        "FATAL crash imei=490154203237518 mac=3C:22:FB:12:34:56 ip 10.20.30.40 "
        "user alice@example.com at 2026-11-25T13:54:09Z",
        "FATAL crash imei=<IMEI> mac=<MAC> ip <IP> user <EMAIL> at 2026-11-25T13:54:09Z",
        {"IMEI": 1, "MAC": 1, "IP": 1, "EMAIL": 1},
    ),
    (
        "https://shop.example.com/u/profile?phone=13800138000&email=bob%40qq.com"
        "&lat=39.9042&lng=116.4074&v=1.2.3",
        "https://shop.example.com/u/profile?phone=<PHONE>&email=<EMAIL>"
        "&lat=<COORDINATES>&lng=<COORDINATES>&v=1.2.3",
        {"PHONE": 1, "EMAIL": 1, "COORDINATES": 2},
    ),
    (
        "实名认证失败: 身份证号11010519491231002X, 手机 +86 138 0013 8000, 位置 39.9042,116.4074",
        "实名认证失败: 身份证号<RESIDENT_ID>, 手机 <PHONE>, 位置 <COORDINATES>",
        {"RESIDENT_ID": 1, "PHONE": 1, "COORDINATES": 1},
    ),
    (
        'ad request {"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC", '
        '"trace": "123e4567-e89b-12d3-a456-426614174000", "client": "2001:db8::8a2e:370:7334"}',
        'ad request {"idfa": "<AD_ID>", "trace": "<UUID>", "client": "<IP>"}',
        {"AD_ID": 1, "UUID": 1, "IP": 1},
    ),
    (
        "java.net.SocketTimeoutException: connect to /192.168.1.23:443 timed out\n"
        "\tat okhttp3.RealCall.execute(RealCall.java:93) v=4.12.0 dev 35-209900-176148-1",
        "java.net.SocketTimeoutException: connect to /<IP>:443 timed out\n"
        "\tat okhttp3.RealCall.execute(RealCall.java:93) v=4.12.0 dev <IMEI>",
        {"IP": 1, "IMEI": 1},
    ),
]


@pytest.mark.parametrize(("text", "expected", "found"), RECALL)
def test_personal_data_in_logs_and_urls_is_replaced_by_tokens(
    text: str, expected: str, found: dict[str, int]
) -> None:
    assert scrub(text) == ScrubResult(expected, found)


def test_email_holding_a_phone_number_is_one_email() -> None:
    assert scrub("from 13800138000@139.com") == ScrubResult("from <EMAIL>", {"EMAIL": 1})


def test_ipv4_tail_of_an_ipv6_address_is_one_ip() -> None:
    assert scrub("peer ::ffff:192.0.2.1 up") == ScrubResult("peer <IP> up", {"IP": 1})


def test_labelled_uuid_is_an_advertising_id_not_a_plain_uuid() -> None:
    text = "oaid=38400000-8cf0-11bd-b23e-10b96e40000d"
    assert scrub(text) == ScrubResult("oaid=<AD_ID>", {"AD_ID": 1})


def test_repeated_values_are_each_counted() -> None:
    result = scrub("a 10.0.0.2 b 10.0.0.3 c 10.0.0.2")
    assert result == ScrubResult("a <IP> b <IP> c <IP>", {"IP": 3})


# --- properties ----------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "490154203237518",
        "13800138000",
        "+86 139 1234 5678",
        "11010519491231002X",
        "aa:bb:cc:dd:ee:ff",
        "10.1.2.3",
        "2001:db8::1",
        "alice@example.com",
        "39.9042,116.4074",
        "lat=39.90",
        "idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC",
        "123e4567-e89b-12d3-a456-426614174000",
        "v1.2.3",
        "version ",
        "1732543200000",
        "13:54:09",
        "0x7fff5fbff8a8",
        "@",
        ":",
        ",",
        ".",
        "-",
        " ",
        "=",
        "<",
        ">",
        "a",
        "0",
        "1",
        "9",
        "设备",
    ]
)
PIECES = st.lists(st.one_of(FRAGMENTS, st.text(max_size=6)), max_size=12).map("".join)
NOISE = st.text(
    alphabet=st.sampled_from("abcxyz ABC0123456789.,:;-_=/@+()[]\n\t设备号"), max_size=30
)


@settings(max_examples=300, deadline=None)
@given(PIECES)
def test_scrubbing_twice_finds_nothing_new(text: str) -> None:
    once = scrub(text)
    twice = scrub(once.text)
    assert twice.found == {}
    assert twice.text == once.text


@settings(max_examples=300, deadline=None)
@given(st.one_of(PIECES, NOISE))
def test_the_gates_never_turn_away_a_text_with_findings(text: str) -> None:
    # `may_hold` (triggers, then prefilter) may only skip a text the patterns find nothing in.
    for rec in RECOGNIZERS:
        if not rec.may_hold(text):
            assert list(rec.findings(text)) == [], rec.entity


@st.composite
def imeis(draw: st.DrawFn) -> str:
    body = draw(
        st.text(alphabet="0123456789", min_size=14, max_size=14).filter(
            lambda b: b.strip("0") != ""
        )
    )
    return body + luhn_check_digit(body)


@st.composite
def phones(draw: st.DrawFn) -> str:
    digits = (
        "1"
        + draw(st.sampled_from("3456789"))
        + draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    )
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086-", "86"]))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return prefix + digits[:3] + sep + digits[3:7] + sep + digits[7:]


LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=12)
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
EMAILS = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    LOCAL.filter(lambda s: s[0].isalnum()),
    LABEL,
    st.sampled_from(["com", "cn", "net", "org", "com.cn", "io"]),
)


@settings(max_examples=200, deadline=None)
@given(NOISE, st.one_of(imeis(), phones(), EMAILS), NOISE)
def test_no_generated_identifier_survives_in_random_text(
    before: str, value: str, after: str
) -> None:
    text = f"{before} {value} {after}"
    result = scrub(text)
    assert value not in result.text
    assert result.found


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_text_without_findings_is_returned_as_the_same_object(text: str) -> None:
    result = scrub(text)
    if not result.found:
        assert result.text is text
    else:
        assert result.text != text


def test_email_at_a_domain_that_looks_like_a_scale_suffix_is_still_scrubbed() -> None:
    assert scrub("mail 0@0x.com now").text == "mail <EMAIL> now"
    assert scrub("icon@2x.png").text == "icon@2x.png"


# --- overlap resolution --------------------------------------------------------------


def naive_resolution(candidates: list[Finding]) -> list[Finding]:
    """The oracle: each candidate, best first, checked against every finding kept so far.

    This pairwise loop was `find`'s own until issue 13: quadratic in the number of
    findings (9 s for 100 KB of e-mail addresses), and the behaviour to keep.
    """
    ranked = sorted(candidates, key=lambda f: (f.start - f.end, -f.priority, f.start))
    kept: list[Finding] = []
    for candidate in ranked:
        if all(candidate.end <= k.start or candidate.start >= k.end for k in kept):
            kept.append(candidate)
    kept.sort(key=lambda f: f.start)
    return kept


SPANS = st.lists(
    st.builds(
        lambda start, length, entity, priority: Finding(start, start + length, entity, priority),
        st.integers(0, 40),
        st.integers(0, 12),
        st.sampled_from(["EMAIL", "PHONE", "IP"]),
        st.sampled_from([40, 40, 60, 80]),
    ),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(SPANS)
def test_overlap_resolution_keeps_what_the_pairwise_check_keeps(candidates: list[Finding]) -> None:
    assert resolve_overlaps(candidates) == naive_resolution(candidates)


@settings(max_examples=300, deadline=None)
@given(PIECES)
def test_find_keeps_what_the_pairwise_check_keeps(text: str) -> None:
    candidates = [finding for rec in RECOGNIZERS for finding in rec.find(text)]
    assert find(text) == naive_resolution(candidates)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(PIECES, NOISE), max_size=12))
def test_the_clean_text_memo_answers_as_the_scrubber_and_keeps_only_clean_texts(
    texts: list[str],
) -> None:
    memo = CleanTextMemo(texts=5, max_chars=20)
    for text in [*texts, *texts]:  # every text asked twice, the second time maybe remembered
        assert memo(text) == scrub(text)
        assert len(memo) <= 5
    for text in texts:
        if text in memo:
            assert scrub(text).found == {} and len(text) <= 20


def test_the_clean_text_memo_scrubs_a_text_with_findings_every_time() -> None:
    calls: list[str] = []

    def counting(text: str) -> ScrubResult:
        calls.append(text)
        return scrub(text)

    memo = CleanTextMemo(counting)
    clean, personal = "page /home opened", "call 13800138000 back"
    for _ in range(3):
        assert memo(clean).text == clean
        assert memo(personal).text == "call <PHONE> back"
    assert calls == [clean, personal, personal, personal]
    assert clean in memo and personal not in memo
