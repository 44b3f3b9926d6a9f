"""Shared pieces of the confluent-kafka transport: settings, error mapping, client building."""

from __future__ import annotations

import logging
import time
from typing import Any

import confluent_kafka as ck

from ingest.errors import AuthenticationError, ConfigError, TransportError
from ingest.kafka.base import (
    TopicPartition,
)
from ingest.kafka.config import KafkaSettings
from ingest.kafka.errors import (
    AuthorizationError,
    FencedError,
    TransactionError,
    UnreachableError,
    map_error,
)

log = logging.getLogger(__name__)

_LIBRDKAFKA_LOG = logging.getLogger(f"{__name__}.librdkafka")

POLL_EVERY = 1000  # serve delivery reports once per this many sends
METADATA_TIMEOUT_S = 10.0
QUEUE_FULL_WAIT_S = 0.05
# "_FATAL": a call on an instance already in librdkafka's fatal state (its cause, e.g.
# fencing seen on a delivery report, came first): it can do nothing more, as if fenced.
_FENCED = ("FENCED", "INVALID_PRODUCER_EPOCH", "INVALID_PRODUCER_ID_MAPPING", "_FATAL")
_UNREACHABLE = ("TIMED_OUT", "_TRANSPORT", "ALL_BROKERS_DOWN", "_RESOLVE", "NOT_COORDINATOR")
# librdkafka reports refused credentials only to the error callback and keeps retrying, so
# the call that gives up says "timed out" / "_TRANSPORT". Within this many seconds of such a
# report, an unreachable-class error is the authentication failure (confluent-kafka-python#1034).
AUTH_FAILURE_WINDOW_S = 60.0
_auth_failed_at: float | None = None


def map_confluent_error(exc: BaseException, what: str) -> TransportError:
    """The project's error for a librdkafka error, classed as `map_error` classes kafka-python's."""
    err = exc.args[0] if exc.args and isinstance(exc.args[0], ck.KafkaError) else None
    if err is None:
        return map_error(exc, what)
    name = str(err.name())
    message = f"{what}: {name}"
    if any(f in name for f in _FENCED) or err.fatal():
        return FencedError(message)
    if "AUTHENTICATION" in name or "SASL" in name:
        return AuthenticationError(message)
    if "AUTHORIZATION" in name:
        return AuthorizationError(message)
    if err.txn_requires_abort():
        return TransactionError(message)
    if any(u in name for u in _UNREACHABLE):
        if _auth_failed_at is not None and time.monotonic() - _auth_failed_at < (
            AUTH_FAILURE_WINDOW_S
        ):
            return AuthenticationError(f"{message} after _AUTHENTICATION")
        return UnreachableError(message)
    if "TXN" in name or "TRANSACTION" in name or "_STATE" in name:
        return TransactionError(message)
    return TransportError(message)


def _on_error(err: Any) -> None:
    """librdkafka's global error callback: client-level errors, mostly transient."""
    global _auth_failed_at
    if err.code() == ck.KafkaError._AUTHENTICATION:
        _auth_failed_at = time.monotonic()
    log.warning("librdkafka error: %s (fatal: %s)", err.name(), err.fatal())


def common_config(settings: KafkaSettings) -> dict[str, Any]:
    """Connection settings shared by every client."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.require_bootstrap(),
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol,
        "error_cb": _on_error,
        "logger": _LIBRDKAFKA_LOG,
    }
    if settings.security_protocol.startswith("SASL"):
        conf["sasl.mechanisms"] = settings.sasl_mechanism
        conf["sasl.username"] = settings.sasl_username
        assert settings.sasl_password is not None
        conf["sasl.password"] = settings.sasl_password.get_secret_value()
    return conf


def build_client(kind: Any, conf: dict[str, Any], what: str) -> Any:
    """A librdkafka client; invalid settings raise ConfigError (the password never shown)."""
    try:
        return kind(conf)
    except (ck.KafkaException, ValueError, TypeError) as exc:
        detail = str(exc)
        secret = conf.get("sasl.password")
        if secret:
            detail = detail.replace(str(secret), "***")
        raise ConfigError(f"invalid {what} settings: {detail}") from None


def to_confluent_tp(tp: TopicPartition, offset: int | None = None) -> Any:
    if offset is None:
        return ck.TopicPartition(tp.topic, tp.partition)
    return ck.TopicPartition(tp.topic, tp.partition, offset)
