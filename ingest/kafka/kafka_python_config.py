"""Connection settings every kafka-python client shares."""

from __future__ import annotations

from typing import Any

from ingest.kafka.config import KafkaSettings


def common_config(settings: KafkaSettings) -> dict[str, Any]:
    """Connection settings shared by every client."""
    conf: dict[str, Any] = {
        "bootstrap_servers": settings.require_bootstrap().split(","),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "bootstrap_timeout_ms": 10_000,
    }
    if settings.security_protocol.startswith("SASL"):
        conf["sasl_mechanism"] = settings.sasl_mechanism
        conf["sasl_plain_username"] = settings.sasl_username
        assert settings.sasl_password is not None
        conf["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return conf
