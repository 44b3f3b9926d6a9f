"""Connection settings for a Kafka cluster, read from arguments, environment or files.

Environment: CONSENTGATE_BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS),
CONSENTGATE_CLIENT, CONSENTGATE_SECURITY_PROTOCOL, CONSENTGATE_SASL_MECHANISM,
CONSENTGATE_SASL_USERNAME, CONSENTGATE_SASL_PASSWORD or
CONSENTGATE_SASL_PASSWORD_FILE. Passwords are SecretStr and never printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import ConfigError, validation_problems

ClientName = Literal["kafka-python", "confluent"]


class KafkaSettings(BaseSettings):
    """How to reach one Kafka cluster, and with which client library."""

    model_config = SettingsConfigDict(env_prefix="CONSENTGATE_", extra="forbid")

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "bootstrap_servers", "CONSENTGATE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    client: ClientName = "kafka-python"
    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    client_id: str = "consentgate"

    @model_validator(mode="after")
    def _check_sasl(self) -> KafkaSettings:
        if self.sasl_password is None and self.sasl_password_file is not None:
            try:
                secret = self.sasl_password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read sasl_password_file: {exc.strerror}") from exc
            self.sasl_password = SecretStr(secret)
        if self.security_protocol.startswith("SASL"):
            if not self.sasl_mechanism:
                self.sasl_mechanism = "PLAIN"
            if not self.sasl_username or self.sasl_password is None:
                raise ValueError("SASL needs sasl_username and a password (or password file)")
        return self

    def require_bootstrap(self) -> str:
        """The bootstrap address, or a ConfigError saying how to get one."""
        if self.bootstrap_servers:
            return self.bootstrap_servers
        local = local_broker_bootstrap()
        if local:
            return local
        raise ConfigError(
            "no Kafka cluster given: pass --bootstrap, set CONSENTGATE_BOOTSTRAP_SERVERS, "
            "or start the local broker with `consentgate broker start`"
        )


def default_run_dir() -> Path:
    """Where the local development broker keeps its state (`$CONSENTGATE_RUN_DIR`)."""
    return Path(os.environ.get("CONSENTGATE_RUN_DIR", ".run/broker"))


def local_broker_bootstrap(run_dir: Path | None = None) -> str | None:
    """Bootstrap address of the local development broker, if its state file exists."""
    state = (run_dir or default_run_dir()) / "broker.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("bootstrap")
    return value if isinstance(value, str) else None


def load_settings(**overrides: object) -> KafkaSettings:
    """Settings from the environment with explicit overrides (None values ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return KafkaSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, root="settings"))
        raise ConfigError(f"invalid Kafka settings: {problems}") from None
