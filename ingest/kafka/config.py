"""Connection settings for a Kafka cluster, read from arguments, environment or files.

Environment: CONSENTGATE_BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS),
CONSENTGATE_CLIENT, CONSENTGATE_SECURITY_PROTOCOL, CONSENTGATE_SASL_MECHANISM,
CONSENTGATE_SASL_USERNAME, CONSENTGATE_SASL_PASSWORD or
CONSENTGATE_SASL_PASSWORD_FILE. An empty variable counts as unset. Passwords are
SecretStr and never printed, not even in an error; a password file must be
readable by its owner only (`chmod 600`), and a placeholder password is refused.

The secret checks (`weak_secret_reason`) live here, so the pipeline's person key
is judged by the same rules. So does the list of CONSENTGATE_* variables read
outside the settings classes (`OTHER_VARIABLES`), so that the worker can refuse
one that nothing reads.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import ConfigError, validation_problems

ClientName = Literal["kafka-python", "confluent"]

ENV_PREFIX = "CONSENTGATE_"
# CONSENTGATE_* variables read straight from the environment, not through a settings class.
OTHER_VARIABLES = frozenset(
    {
        "CONSENTGATE_TOPIC_PREFIX",  # ingest.kafka.topics
        "CONSENTGATE_RUN_DIR",  # local broker state: ingest.kafka.config, ingest.cli.broker
        "CONSENTGATE_CACHE",  # the local broker's jar cache: ingest.local_broker.jars
        "CONSENTGATE_TEST_DOCKER",  # the test suite: tests/conftest.py
    }
)

# Secrets: a value made only of these words and digits (any case, any separators) is a
# placeholder, as are keys under these limits. The estimate is the key's length times
# the Shannon entropy of its own characters: crude, but it catches repeated or
# sequential keys that a length rule lets through.
PLACEHOLDER_WORDS: tuple[str, ...] = (
    "changeme", "change", "me", "password", "passwd", "secret", "example", "sample",
    "test", "placeholder", "demo", "default", "dummy", "key", "todo", "x",
)  # fmt: skip
MIN_SECRET_CHARS = 16
MIN_DISTINCT_CHARS = 10
MIN_SECRET_BITS = 64.0
_PLACEHOLDER = re.compile("(?:" + "|".join(PLACEHOLDER_WORDS) + r"|[0-9])+")


def is_placeholder(value: str) -> bool:
    """True for an empty value or one made only of placeholder words and digits."""
    letters = re.sub(r"[\W_]+", "", value.lower())
    return not letters or _PLACEHOLDER.fullmatch(letters) is not None


def estimated_bits(value: str) -> float:
    """Length times the Shannon entropy (bits) of the value's own character frequencies."""
    counts = Counter(value)
    n = len(value)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def weak_secret_reason(value: str) -> str | None:
    """Why `value` is unfit as a secret key, or None; the reason never repeats the value."""
    if is_placeholder(value):
        return "is a placeholder"
    if len(value) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if len(set(value)) < MIN_DISTINCT_CHARS:
        return f"has fewer than {MIN_DISTINCT_CHARS} distinct characters"
    if estimated_bits(value) < MIN_SECRET_BITS:
        return f"is too predictable (estimated under {MIN_SECRET_BITS:.0f} bits)"
    return None


def address_problem(address: str) -> str | None:
    """What is wrong with one bootstrap address `[SCHEME://]HOST[:PORT]`, or None."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or "]" in port:  # no port given (clients default to 9092), or bare IPv6
        host, sep, port = hostport, "", ""
    if not host.strip("[]"):
        return "has no host (expected HOST:PORT)"
    if (sep and not port) or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
        return "has a port outside 1-65535 (expected HOST:PORT)"
    return None


def read_secret_file(path: Path, setting: str) -> str:
    """The stripped text of a secret file that only its owner can read (mode 600 or 400)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise PydanticCustomError(
            "secret_file", "cannot read {setting} {path}: {reason}",
            {"setting": setting, "path": str(path), "reason": reason},
        ) from None  # fmt: skip
    if mode & 0o077:
        raise PydanticCustomError(
            "secret_file_mode",
            "{setting} {path} is readable by group or others: run chmod 600 {path}",
            {"setting": setting, "path": str(path)},
        )
    return text


class KafkaSettings(BaseSettings):
    """How to reach one Kafka cluster, and with which client library."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", env_ignore_empty=True)

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

    @field_validator(
        "bootstrap_servers", "sasl_username", "sasl_password", "sasl_password_file", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        for entry in value.split(",") if value is not None else ():
            problem = address_problem(entry.strip())
            if problem:
                raise PydanticCustomError(
                    "bootstrap", "address {entry} {problem}", {"entry": entry, "problem": problem}
                )
        return value

    @model_validator(mode="after")
    def _check_sasl(self) -> KafkaSettings:
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise PydanticCustomError(
                    "conflict",
                    "set CONSENTGATE_SASL_PASSWORD or CONSENTGATE_SASL_PASSWORD_FILE, not both",
                )
            secret = read_secret_file(self.sasl_password_file, "CONSENTGATE_SASL_PASSWORD_FILE")
            self.sasl_password = SecretStr(secret) if secret else None
        if self.security_protocol.startswith("SASL"):
            if not self.sasl_mechanism:
                self.sasl_mechanism = "PLAIN"
            if not self.sasl_username or self.sasl_password is None:
                raise PydanticCustomError(
                    "sasl",
                    "SASL needs CONSENTGATE_SASL_USERNAME and a password "
                    "(CONSENTGATE_SASL_PASSWORD or CONSENTGATE_SASL_PASSWORD_FILE)",
                )
            if is_placeholder(self.sasl_password.get_secret_value()):
                raise PydanticCustomError(
                    "placeholder",
                    "the SASL password (CONSENTGATE_SASL_PASSWORD or its file) is a "
                    "placeholder: set the principal's real password",
                )
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


def variable_names(settings: type[BaseSettings]) -> frozenset[str]:
    """The CONSENTGATE_* environment variables a settings class reads (upper case)."""
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {c.upper() for c in alias.choices if isinstance(c, str)}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{ENV_PREFIX}{name}".upper())
    return frozenset(n for n in names if n.startswith(ENV_PREFIX))


def unknown_variables(known: frozenset[str], environ: Mapping[str, str]) -> list[str]:
    """Set CONSENTGATE_* variables outside `known`, sorted; empty ones count as unset."""
    return sorted(
        name
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known and value
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
