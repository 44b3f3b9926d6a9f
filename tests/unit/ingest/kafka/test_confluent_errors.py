"""librdkafka errors mapped to the project's transport errors (no broker needed)."""

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
