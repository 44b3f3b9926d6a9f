"""Mainland residency: the sink's brokers must sit in allowed racks, targets carry the marker."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ingest.kafka.base import BrokerInfo


@dataclass(frozen=True, slots=True)
class ResidencyResult:
    """Whether the sink may be written to, and each problem as (kind, text)."""

    ok: bool
    problems: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def check_residency(
    brokers: Sequence[BrokerInfo],
    allow: Iterable[str],
    targets: Iterable[str],
    is_mainland: object,
) -> ResidencyResult:
    """Fail closed: no brokers, a broker without rack or outside the allow-list, a bad topic."""
    patterns = tuple(allow)
    problems: list[tuple[str, str]] = []
    if not brokers:
        problems.append(("no_brokers", "the sink cluster reported no brokers"))
    for broker in brokers:
        if broker.rack is None:
            problems.append(("rack_missing", f"broker {broker.node_id} reports no broker.rack"))
        elif not any(fnmatchcase(broker.rack, p) for p in patterns):
            problems.append(
                ("rack_outside", f"broker {broker.node_id} rack {broker.rack} is not allowed")
            )
    check = is_mainland if callable(is_mainland) else None
    for topic in targets:
        if check is None or not check(topic):
            problems.append(("topic_prefix", f"target topic {topic} lacks the mainland prefix"))
    return ResidencyResult(ok=not problems, problems=tuple(problems))
