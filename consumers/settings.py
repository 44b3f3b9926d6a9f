"""Pipeline settings: one documented defaults object, from environment (CONSENTGATE_*) or flags.

Unknown keys and contradictory values fail at start with one clear message.
Secrets (the k-anonymity person key) are SecretStr and never printed, not even in
an error. Outside demo mode the key must be the operator's own: not the public demo
key, not a placeholder, 16+ characters with 10+ distinct ones and an estimated 64+
bits (`ingest.config.weak_secret_reason`). An empty variable counts as unset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import weak_secret_reason
from ingest.errors import ConfigError, validation_problems

# Examples of values refused as secrets (the rule is `ingest.config.is_placeholder`).
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "placeholder", "secret", "demo", "password", "example", "test"}
)
DEMO_PERSON_KEY = "consentgate-demo-key-not-for-production"
KEY_HINT = (
    "set CONSENTGATE_KANON_PERSON_KEY to 16+ random characters, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, or run with --demo"
)


class PipelineSettings(BaseSettings):
    """Everything a worker needs besides the Kafka connection."""

    model_config = SettingsConfigDict(
        env_prefix="CONSENTGATE_", extra="ignore", env_ignore_empty=True
    )

    group_id: str = Field("consentgate-pipeline", min_length=1)
    worker_index: int = Field(0, ge=0)
    transactional_id_prefix: str = Field("consentgate-worker", min_length=1)
    exactly_once: bool = True
    commit_interval_ms: int = Field(500, ge=10, le=60_000)
    commit_max_records: int = Field(10_000, ge=1)
    max_poll_records: int = Field(2_000, ge=1)
    poll_timeout_ms: int = Field(100, ge=1, le=10_000)
    k: int = Field(10, ge=2, le=1000)
    kanon_max_delay_ms: int = Field(60_000, ge=0)
    min_policy_version: int = Field(1, ge=1)
    guardian_age: int = Field(14, ge=1, le=18)
    missing_birth_needs_guardian: bool = True
    residency_allow: tuple[str, ...] = ("cn-north-*", "cn-east-*", "cn-south-*")
    residency_recheck_ms: int = Field(30_000, ge=1_000)
    sink_bootstrap_servers: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(9400, ge=0, le=65535)
    anonymization_policy: Path | None = None
    kanon_person_key: SecretStr | None = None
    consent_writer: bool = True
    demo_mode: bool = False
    # Byte budgets and failure handling (README "Limits").
    max_raw_record_bytes: int = Field(512 * 1024, ge=1024, le=1024 * 1024)
    kanon_max_held: int = Field(200_000, ge=100)
    kanon_max_held_bytes: int = Field(256 * 1024 * 1024, ge=1024 * 1024)
    max_batch_failures: int = Field(3, ge=1, le=100)
    stuck_after_ms: int = Field(60_000, ge=1_000)
    # "repartition": held records go through the restricted repartition topic, keyed by
    # region, so one worker groups a region whatever raw partition it came from (needed
    # with several workers); "local": each worker groups its own raw partitions (one
    # worker owning every raw partition: no extra hop).
    kanon_grouping: Literal["repartition", "local"] = "repartition"

    @model_validator(mode="after")
    def _check(self) -> PipelineSettings:
        key = self.kanon_person_key.get_secret_value() if self.kanon_person_key else ""
        if not key:
            problem: str | None = "is not set"
        elif key == DEMO_PERSON_KEY:
            problem = "is the public demo key"
        else:
            problem = weak_secret_reason(key)
        if problem is not None:
            if not self.demo_mode:
                raise PydanticCustomError(
                    "person_key",
                    "CONSENTGATE_KANON_PERSON_KEY (kanon_person_key) {problem}: {hint}",
                    {"problem": problem, "hint": KEY_HINT},
                )
            self.kanon_person_key = SecretStr(DEMO_PERSON_KEY)
        if not self.residency_allow:
            raise ValueError("residency_allow must list at least one rack pattern")
        return self

    def person_key(self) -> bytes:
        """The key that turns user ids into opaque person tokens for the k-anonymity window."""
        assert self.kanon_person_key is not None
        return self.kanon_person_key.get_secret_value().encode()

    def transactional_id(self, prefix: str = "") -> str:
        """Stable per worker index, so a restarted worker fences its previous incarnation."""
        return f"{prefix}{self.transactional_id_prefix}-{self.worker_index}"


def load_pipeline_settings(**overrides: object) -> PipelineSettings:
    """Settings from the environment with explicit overrides (None values ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return PipelineSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, root="settings"))
        raise ConfigError(f"invalid pipeline settings: {problems}") from None
