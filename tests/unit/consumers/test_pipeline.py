"""invalid_reason(): why a decoded raw event cannot be judged, as the validate stage says it."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.pipeline import invalid_reason
from ingest.kafka.base import Message

NOW_MS = 1_750_000_000_000
DAY_MS = 24 * 3600 * 1000


def _msg(key: bytes | None) -> Message:
    return Message("raw.device-events", 0, 7, key, b"", [], NOW_MS)


@pytest.mark.parametrize(
    ("event", "key", "reason"),
    [
        ({"user_id": "u1", "event_time": NOW_MS}, b"u1", None),
        ({"user_id": "u1", "event_time": NOW_MS + DAY_MS}, b"u1", None),
        ({"user_id": "", "event_time": NOW_MS}, b"", "missing_user_id"),
        ({"event_time": NOW_MS}, b"u1", "missing_user_id"),
        ({"user_id": "u1", "event_time": NOW_MS}, None, "key_mismatch"),
        ({"user_id": "u1", "event_time": NOW_MS}, b"u2", "key_mismatch"),
        ({"user_id": "u1", "event_time": 0}, b"u1", "bad_event_time"),
        ({"user_id": "u1", "event_time": "1750000000000"}, b"u1", "bad_event_time"),
        ({"user_id": "u1", "event_time": NOW_MS + DAY_MS + 1}, b"u1", "event_time_in_future"),
    ],
)
def test_an_event_is_judged_only_with_its_user_key_and_a_plausible_time(
    event: dict[str, Any], key: bytes | None, reason: str | None
) -> None:
    assert invalid_reason(event, _msg(key), NOW_MS) == reason
