"""Pipeline settings: one documented defaults object, from environment (CONSENTGATE_*) or flags.

Unknown keys and contradictory values fail at start with one clear message. A key
is unknown when it is not a field below; a CONSENTGATE_* variable is unknown when
neither these settings, the Kafka connection settings (`ingest.kafka.config.KafkaSettings`)
nor anything else the worker runs (`ingest.kafka.config.OTHER_VARIABLES`) reads it. The
message names the key, and the nearest known one, never a value.
Secrets (the k-anonymity person key) are SecretStr and never printed, not even in
an error. Outside demo mode the key must be the operator's own: not the public demo
key, not a placeholder, 16+ characters with 10+ distinct ones and an estimated 64+
bits (`ingest.kafka.config.weak_secret_reason`). An empty variable counts as unset.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import ConfigError, validation_problems
from ingest.kafka.config import (
    ENV_PREFIX,
    OTHER_VARIABLES,
    KafkaSettings,
    unknown_variables,
    variable_names,
    weak_secret_reason,
)

# Examples of values refused as secrets (the rule is `ingest.kafka.config.is_placeholder`).
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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", env_ignore_empty=True)

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
    # The time over which a grouped pool leaves, whole groups per loop turn, before its
    # deadline (consumers/kanon.py): longer spreads a release over more turns (shorter
    # pauses of the loop, so lower latency) but groups each pool that much earlier (fewer
    # persons per pool, so coarser values). Unset: a sixtieth of kanon_max_delay_ms.
    kanon_release_spread_ms: int | None = Field(None, ge=0)
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
    # How held records are written to the repartition topic and the checkpoint
    # (consumers/held.py): "bundled", their level-0 values, a batch's records of one
    # repartition key in one record; "compact", the same values, one record each (what
    # versions before bundles read); "named", the form versions before the compact one
    # read. The last two are for rolling upgrades (README "Upgrading"). All are read.
    held_format: Literal["bundled", "compact", "named"] = "bundled"

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


def known_variables() -> frozenset[str]:
    """Every CONSENTGATE_* variable a worker process reads."""
    return variable_names(PipelineSettings) | variable_names(KafkaSettings) | OTHER_VARIABLES


def unknown_settings(given: Collection[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Unknown keys among `given` and the environment's variables, with the nearest known name."""
    fields = list(PipelineSettings.model_fields)
    problems = [_with_nearest(key, key, fields) for key in sorted(set(given) - set(fields))]
    known = known_variables()
    suffixes = [name.removeprefix(ENV_PREFIX) for name in sorted(known)]
    for name in unknown_variables(known, os.environ if environ is None else environ):
        suffix = name.upper().removeprefix(ENV_PREFIX)
        problems.append(_with_nearest(name, suffix, suffixes, prefix=ENV_PREFIX))
    return problems


def _with_nearest(key: str, probe: str, names: Sequence[str], prefix: str = "") -> str:
    near = difflib.get_close_matches(probe, names, n=1)
    return f"{key} (did you mean {prefix}{near[0]}?)" if near else key


def load_pipeline_settings(**overrides: object) -> PipelineSettings:
    """Settings from the environment with explicit overrides (None values ignored)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = unknown_settings(given)
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"unknown pipeline setting{plural}: {', '.join(unknown)}; "
            "consumers/settings.py lists the settings"
        )
    try:
        return PipelineSettings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, root="settings"))
        raise ConfigError(f"invalid pipeline settings: {problems}") from None
