"""Refused credentials map to AuthenticationError on both clients (no broker needed).

A SASL broker test of the same thing is in tests/integration/test_cli_publish.py.
"""

from __future__ import annotations

import kafka.errors as kerr
import pytest

from ingest.errors import AuthenticationError
from ingest.kafka.errors import AuthorizationError, UnreachableError, map_error


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (kerr.SaslAuthenticationFailedError("Invalid username or password"), AuthenticationError),
        (kerr.TopicAuthorizationFailedError(), AuthorizationError),
        (kerr.GroupAuthorizationFailedError(), AuthorizationError),
        (kerr.KafkaTimeoutError(), UnreachableError),
    ],
)
def test_kafka_python_errors_map_by_kind(error: Exception, mapped: type) -> None:
    assert type(map_error(error, "cannot connect")) is mapped


def test_an_authentication_error_is_not_retriable() -> None:
    assert not AuthenticationError("x").retriable


def _confluent(code: int) -> type:
    ck = pytest.importorskip("confluent_kafka", reason="the librdkafka extra is not installed")
    from ingest.kafka.confluent_common import map_confluent_error

    return type(map_confluent_error(ck.KafkaException(ck.KafkaError(code)), "list topics failed"))


def test_confluent_authentication_and_authorization_errors_are_told_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ck = pytest.importorskip("confluent_kafka")
    from ingest.kafka import confluent_common

    monkeypatch.setattr(confluent_common, "_auth_failed_at", None)
    assert _confluent(ck.KafkaError._AUTHENTICATION) is AuthenticationError
    assert _confluent(ck.KafkaError.SASL_AUTHENTICATION_FAILED) is AuthenticationError
    assert _confluent(ck.KafkaError.TOPIC_AUTHORIZATION_FAILED) is AuthorizationError
    assert _confluent(ck.KafkaError._TRANSPORT) is UnreachableError


def test_a_confluent_timeout_right_after_a_refused_login_is_an_authentication_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ck = pytest.importorskip("confluent_kafka")
    from ingest.kafka import confluent_common

    monkeypatch.setattr(confluent_common, "_auth_failed_at", None)
    confluent_common._on_error(ck.KafkaError(ck.KafkaError._AUTHENTICATION))
    assert _confluent(ck.KafkaError._TRANSPORT) is AuthenticationError
    assert _confluent(ck.KafkaError._TIMED_OUT) is AuthenticationError
    now = confluent_common.time.monotonic()
    stale = now - confluent_common.AUTH_FAILURE_WINDOW_S - 1
    monkeypatch.setattr(confluent_common, "_auth_failed_at", stale)
    assert _confluent(ck.KafkaError._TIMED_OUT) is UnreachableError
