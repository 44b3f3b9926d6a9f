"""The declarative topic set: names, partitions, replication, compaction and retention.

A topic with a retention also gets `segment.ms` (`segment_ms_for`): Kafka deletes
whole closed segments only, and its default segment lasts 7 days, so without it a
record of a 1-day topic could live 8 days. With it, a record outlives its retention
by at most one segment (an hour for 1 day) plus the broker's 5-minute check.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.errors import ConfigError, validation_problems
from ingest.kafka.base import TopicInfo, TopicSpec

TOPICS_FILE = Path(__file__).with_name("topics.toml")

HOUR_MS = 3_600_000


def segment_ms_for(retention_ms: int) -> int:
    """A 24th of the retention, between an hour and a day."""
    return max(HOUR_MS, min(retention_ms // 24, 24 * HOUR_MS))


Role = Literal[
    "raw_device",
    "raw_log",
    "consent",
    "consent_changes",
    "anon_device",
    "anon_log",
    "dead_letter",
    "erasure",
    "kanon_pending",
    "kanon_repartition",
    "dead_letter_replays",
]
ROLES: tuple[Role, ...] = get_args(Role)
# Config keys the project sets and `topics check` compares.
CHECKED_CONFIGS = ("cleanup.policy", "retention.ms")


class _TopicEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    doc: str
    retention_ms: int | None = Field(default=None, gt=0)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    analyst: bool = False
    partitions: int | None = Field(default=None, gt=0)


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partitions: int = Field(gt=0)
    replication: int = Field(gt=0)


class _TopicsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mainland_marker: str = Field(min_length=1)
    defaults: _Defaults
    topics: dict[Role, _TopicEntry]


@dataclass(frozen=True, slots=True)
class TopicSet:
    """The resolved topic set for one prefix: role -> full topic spec."""

    prefix: str
    mainland_marker: str
    specs: Mapping[str, TopicSpec]
    analyst_roles: frozenset[str]

    def name(self, role: Role) -> str:
        """Full topic name of a role."""
        return self.specs[role].name

    def is_mainland(self, topic: str) -> bool:
        """True if the topic name carries the mainland marker after the prefix."""
        return topic.startswith(self.prefix + self.mainland_marker)

    def analyst_topics(self) -> list[str]:
        """The anonymized topics analysts may read."""
        return [self.specs[r].name for r in ROLES if r in self.analyst_roles]


def load_topic_set(
    prefix: str | None = None,
    partitions: int | None = None,
    replication: int | None = None,
    path: Path = TOPICS_FILE,
) -> TopicSet:
    """Read and validate the topic file; apply prefix and partition/replication overrides."""
    if prefix is None:
        prefix = os.environ.get("CONSENTGATE_TOPIC_PREFIX", "")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = _TopicsFile.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read topic file {path.name}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"topic file {path.name}: {validation_problems(exc)[0]}") from None
    missing = [r for r in ROLES if r not in parsed.topics]
    if missing:
        raise ConfigError(f"topic file {path.name} lacks roles: {', '.join(missing)}")
    specs: dict[str, TopicSpec] = {}
    for role in ROLES:
        entry = parsed.topics[role]
        configs: dict[str, str] = {"cleanup.policy": entry.cleanup_policy}
        if entry.retention_ms is not None:
            configs["retention.ms"] = str(entry.retention_ms)
            configs["segment.ms"] = str(segment_ms_for(entry.retention_ms))
        specs[role] = TopicSpec(
            name=prefix + entry.name,
            partitions=partitions or entry.partitions or parsed.defaults.partitions,
            replication=replication or parsed.defaults.replication,
            configs=configs,
        )
    return TopicSet(
        prefix=prefix,
        mainland_marker=parsed.mainland_marker,
        specs=specs,
        analyst_roles=frozenset(r for r in ROLES if parsed.topics[r].analyst),
    )


def drift(expected: TopicSpec, actual: TopicInfo | None) -> list[str]:
    """Differences between the wanted topic and the cluster's, one readable line each."""
    if actual is None:
        return [f"{expected.name}: missing"]
    problems = []
    if actual.partitions != expected.partitions:
        problems.append(
            f"{expected.name}: {actual.partitions} partitions, expected {expected.partitions}"
        )
    if actual.replication != expected.replication:
        problems.append(
            f"{expected.name}: replication {actual.replication}, expected {expected.replication}"
        )
    for key in CHECKED_CONFIGS:
        want = expected.configs.get(key)
        if want is not None and actual.configs.get(key) != want:
            problems.append(f"{expected.name}: {key}={actual.configs.get(key)}, expected {want}")
    return problems
