"""The anonymization stage: URLs to templates, free text scrubbed and masked."""

from __future__ import annotations

import pytest

from consumers.anonymize import Anonymizer
from consumers.url_template import url_template
from tests.unit.consumers.anonymize_support import ANON, POLICY, failing_scrubber, log_event


@pytest.mark.parametrize(
    ("url", "template"),
    [
        (
            "https://m.example.cn/user/12345/orders?id=9&phone=13812345678#x",
            "https://m.example.cn/user/{id}/orders",
        ),
        ("https://a.example.com", "https://a.example.com"),
        ("HTTPS://Shop.Example.com:8443/cart/", "https://shop.example.com:8443/cart/"),
        ("https://bob:secret@example.com/home", "https://example.com/home"),
        (
            "https://a.cn/item/550e8400-e29b-41d4-a716-446655440000/view",
            "https://a.cn/item/{id}/view",
        ),
        ("https://a.cn/obj/5f2b9c0e4d1a7b3c9e8f", "https://a.cn/obj/{id}"),
        ("https://a.cn/u/alice%40mail.com/feed", "https://a.cn/u/{id}/feed"),
        ("https://a.cn/call/+86-138-1234-5678", "https://a.cn/call/{id}"),
        ("https://a.cn/imei/490154203237518", "https://a.cn/imei/{id}"),
        ("https://a.cn/page;jsessionid=A1B2C3/next", "https://a.cn/page/next"),
        ("https://a.cn/v2/iphone15/reviews", "https://a.cn/v2/iphone15/reviews"),
        ("http://192.168.1.20:8080/admin", "http://{ip}:8080/admin"),
        ("myapp://product/123", "myapp://product/{id}"),
    ],
)
def test_url_becomes_a_template_without_ids_or_query(url: str, template: str) -> None:
    assert url_template(url) == template


@pytest.mark.parametrize(
    "url",
    [
        "/relative/123",
        "mailto:alice@example.com",
        "http://[::1",
        "https://a.cn:99999/",
        "",
        "x",
        "https://a.cn/has space",
        "https://a.cn/\x00",
    ],
)
def test_malformed_url_gives_none(url: str) -> None:
    assert url_template(url) is None


def test_malformed_page_url_is_nulled_and_counted_not_raised() -> None:
    result = ANON.anonymize("log_event", log_event(page_url="http://[::1/oops"))
    assert result.record["url_template"] is None
    assert result.issues == {"url_template": "malformed_url"}


def test_message_is_scrubbed_and_findings_are_counted() -> None:
    text = "crash for alice@example.com, call 13812345678 or bob@example.org"
    result = ANON.anonymize("log_event", log_event(message=text))
    assert result.record["message"] == "crash for <EMAIL>, call <NUMBER> or <EMAIL>"
    assert result.pii_found == {"EMAIL": 2, "NUMBER": 1}


def test_message_numbers_ids_and_quoted_values_are_masked_after_scrubbing() -> None:
    first = ANON.anonymize("log_event", log_event(message="queue depth 729 of 5034 in 'q-17'"))
    second = ANON.anonymize("log_event", log_event(message="queue depth 12 of 80 in 'main'"))
    assert first.record["message"] == second.record["message"] == "queue depth <*> of <*> in <*>"


def test_system_event_is_masked_like_a_message() -> None:
    result = ANON.anonymize("log_event", log_event(system_event="wifi_connected_2402"))
    assert result.record["system_event"] == "<*>"


def test_failing_scrubber_nulls_the_text_instead_of_raising() -> None:
    anon = Anonymizer(POLICY, failing_scrubber)
    result = anon.anonymize("log_event", log_event(message="alice@example.com"))
    assert result.record["message"] is None
    assert result.issues["message"] == "failed"


def test_real_scrubber_plugs_in() -> None:
    scrub_module = pytest.importorskip("consumers.scrub")
    anon = Anonymizer(POLICY, scrub_module.scrub)
    result = anon.anonymize("log_event", log_event(message="mail alice@example.com now"))
    assert "alice@example.com" not in repr(result.record)


def test_the_records_own_identifiers_are_removed_from_its_free_text() -> None:
    """A user id or session id has no pattern; the record itself says which values to remove."""
    from consumers.anonymization_config import load_policy
    from consumers.scrub import scrub as real_scrub

    anonymizer = Anonymizer(load_policy(), real_scrub)
    event = _log_event_for_own_values()
    out = anonymizer.anonymize("log_event", event)
    text = repr(out.record)
    for value in (event["user_id"], event["session_id"], event["event_id"]):
        assert value not in text
    assert out.record["message"] == "token refresh failed for user <USER_ID> in <SESSION_ID>"
    assert out.record["url_template"] == "https://m.example.cn/u/{id}/home"
    assert out.pii_found["USER_ID"] == 1  # the URL's id segment was already templated


def _log_event_for_own_values() -> dict[str, object]:
    return {
        "event_id": "evt-77120",
        "user_id": "8841920331",
        "event_time": 1_780_000_000_000,
        "app_id": "com.example.app",
        "app_version": "1.0.0",
        "brand": "Xiaomi",
        "model": "14",
        "os_name": "Android",
        "os_version": "14.0.1",
        "ip_address": None,
        "time_zone": "Asia/Shanghai",
        "log_type": "CRASH",
        "session_id": "sess-4410",
        "app_open_time": None,
        "usage_duration_ms": None,
        "page_url": "https://m.example.cn/u/8841920331/home?x=1",
        "message": "token refresh failed for user 8841920331 in sess-4410",
        "system_event": None,
    }
