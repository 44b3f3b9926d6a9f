"""librdkafka errors mapped to the project's transport errors, and consumer settings (no broker)."""

from __future__ import annotations

import pytest

ck = pytest.importorskip("confluent_kafka", reason="the librdkafka extra is not installed")

from ingest.kafka.confluent_common import map_confluent_error  # noqa: E402
from ingest.kafka.errors import FencedError, TransactionError, UnreachableError  # noqa: E402


def _mapped(code: int) -> type:
    return type(map_confluent_error(ck.KafkaException(ck.KafkaError(code)), "send failed"))


def test_a_producer_already_in_a_fatal_state_counts_as_fenced() -> None:
    # produce() on a fenced transactional producer may report only "_FATAL"
    assert _mapped(ck.KafkaError._FATAL) is FencedError
    assert _mapped(ck.KafkaError._FENCED) is FencedError
    assert _mapped(ck.KafkaError.INVALID_PRODUCER_EPOCH) is FencedError


def test_other_errors_keep_their_class() -> None:
    assert _mapped(ck.KafkaError._TIMED_OUT) is UnreachableError
    assert _mapped(ck.KafkaError._STATE) is TransactionError


def test_a_prefetch_bound_caps_librdkafkas_queue_and_none_keeps_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ingest.kafka import confluent_consumer
    from ingest.kafka.base import ConsumerOptions
    from ingest.kafka.config import KafkaSettings

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(
        confluent_consumer, "build_client", lambda _cls, conf, _what: seen.append(dict(conf))
    )
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9", client="confluent")
    confluent_consumer.ConfluentConsumer(settings, ConsumerOptions(max_prefetch_bytes=4 << 20))
    confluent_consumer.ConfluentConsumer(settings, ConsumerOptions())
    bounded, default = seen
    assert bounded["queued.max.messages.kbytes"] == 4096
    assert "queued.max.messages.kbytes" not in default
