"""Dead letters as `consentgate dlq` reads them: metadata, never values, and the choice.

A `Letter` is one dead letter's positions, codes, sizes and payload digest, decoded from
its envelope (any version); it carries the rejected record itself only when a replay
needs it. A `Selection` is which dead letters a command means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.kafka.base import Headers
from schemas.codec import Codec
from schemas.errors import DecodeError

READ_TIMEOUT_S = 120.0

Position = tuple[int, int]
"""(partition, offset) of a dead letter on the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class Original:
    """The rejected record as it was: what a replay produces again."""

    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead letter's metadata (no values), and its original record when kept for replay."""

    partition: int
    offset: int
    reason: str
    stage: str
    error_class: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: int | None
    failed_at: int
    key_size: int | None
    payload_size: int | None
    header_count: int
    payload_sha256: bytes | None
    cut: tuple[str, ...]
    original: Original | None = field(default=None, compare=False)

    @property
    def position(self) -> Position:
        """Where the dead letter sits on the dead-letter topic."""
        return (self.partition, self.offset)

    @property
    def log_key(self) -> bytes:
        """Its key on the replay log."""
        return f"{self.partition}:{self.offset}".encode()

    @property
    def identity(self) -> str:
        """Source position and failure time: tells it from a letter of a re-created topic."""
        return f"{self.source_topic}:{self.source_partition}:{self.source_offset}:{self.failed_at}"


def letter_of(partition: int, offset: int, env: Mapping[str, Any], keep: bool) -> Letter:
    """A Letter from a decoded envelope (any version); the original record only if `keep`."""
    key, payload = env.get("key"), env.get("payload")
    headers: list[dict[str, Any]] = list(env.get("headers") or [])
    cut = tuple(
        part for part in ("payload", "key", "headers") if env.get(f"{part}_truncated", False)
    )
    payload_size = env.get("payload_size")
    key_size = env.get("key_size")
    original = None
    if keep:
        original = Original(key, payload, [(h["name"], h["value"]) for h in headers])
    return Letter(
        partition=partition,
        offset=offset,
        reason=str(env["reason"]),
        stage=str(env["stage"]),
        error_class=str(env["error_class"]),
        source_topic=str(env["source_topic"]),
        source_partition=int(env["source_partition"]),
        source_offset=int(env["source_offset"]),
        source_timestamp=env.get("source_timestamp"),
        failed_at=int(env["failed_at"]),
        key_size=key_size if key_size is not None or key is None else len(key),
        payload_size=payload_size if payload_size is not None or payload is None else len(payload),
        header_count=len(headers),
        payload_sha256=env.get("payload_sha256"),
        cut=cut,
        original=original,
    )


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters a command means; every criterion given must match."""

    positions: frozenset[Position] | None = None
    reason: str | None = None
    stage: str | None = None
    sources: frozenset[str] | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, letter: Letter) -> bool:
        """True when the letter is chosen; the time window is on `failed_at`, [since, until)."""
        return (
            (self.positions is None or letter.position in self.positions)
            and (self.reason is None or letter.reason == self.reason)
            and (self.stage is None or letter.stage == self.stage)
            and (self.sources is None or letter.source_topic in self.sources)
            and (self.since_ms is None or letter.failed_at >= self.since_ms)
            and (self.until_ms is None or letter.failed_at < self.until_ms)
        )


def read_letters(
    messages: Iterable[Any], codec: Codec, selection: Selection, keep: bool
) -> tuple[list[Letter], int]:
    """The selected dead letters by position, and how many dead letters were unreadable."""
    letters: list[Letter] = []
    unreadable = 0
    for msg in messages:
        try:
            env = codec.decode_as(msg.value or b"", "dead_letter")
        except DecodeError:
            unreadable += 1
            continue
        letter = letter_of(msg.partition, msg.offset, env, keep=False)
        if selection.matches(letter):
            letters.append(letter_of(msg.partition, msg.offset, env, keep) if keep else letter)
    letters.sort(key=lambda letter: letter.position)
    return letters, unreadable
