"""The release part of the anonymization policy: a ladder per released field, and their order.

SPEC section 7 makes the whole visible record the equivalence class, so every
field an analyst can read (all output fields but `anon_id`) is either the same
for every record of a release (`CONSTANT_FIELDS`, set by the pipeline) or
climbs a ladder of the policy's `[release.ladders]`. `release_problems` names
every way a release section can be wrong against its output schema; the loader
in `consumers.anonymization_config` calls it. `ReleasePlan` is the compiled
form the k-anonymity window works with: records as tuples of level-0 values in
the policy's order, and back to output dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from consumers.ladders import (
    DAY,
    HOUR,
    MEMO_SIZE,
    RUNG_KINDS,
    SIX_HOURS,
    TIME_RUNGS,
    Ladder,
    Rung,
    mapping,
    prefix,
    time_bucket,
    time_value,
)

ANON_ID = "anon_id"
TIME_GRANULARITY = "time_granularity"
CONSTANT_FIELDS = frozenset({"policy_version", "min_consent_policy_version"})
"""Output fields the pipeline sets to one value for every record of a release."""
STAGE_FIELDS = CONSTANT_FIELDS | {ANON_ID, TIME_GRANULARITY}
"""Output fields no policy rule may write: the pipeline sets them."""
GRANULARITIES = (HOUR, SIX_HOURS, DAY)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrefixRung(_Spec):
    """Keep the first `prefix` characters."""

    prefix: Annotated[int, Field(ge=1, le=64)]


class MapRung(_Spec):
    """Look the value up; values the table does not list are withheld."""

    map: dict[str, str] = Field(min_length=1)


RungSpec = str | PrefixRung | MapRung


class ReleaseSpec(_Spec):
    """`[schemas.<name>.release]`: the order fields are refined in, and each field's ladder."""

    order: list[str] = Field(min_length=1)
    ladders: dict[str, list[RungSpec]] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class FieldFacts:
    """What the loader knows of one output field's level-0 values, for the ladder checks."""

    avro_type: Any
    values: frozenset[str] | None = None
    """Every value the rule can produce (bucket labels, enum symbols), when finite."""
    geohash_precision: int | None = None
    is_time: bool = False


def _branches(avro_type: Any) -> list[Any]:
    if isinstance(avro_type, list):
        return [branch for branch in avro_type if branch != "null"]
    return [avro_type]


def _is_string(avro_type: Any) -> bool:
    return "string" in _branches(avro_type)


def _enum_symbols(avro_type: Any) -> frozenset[str] | None:
    for branch in _branches(avro_type):
        if isinstance(branch, dict) and branch.get("type") == "enum":
            return frozenset(branch["symbols"])
    return None


def release_problems(
    where: str,
    spec: ReleaseSpec,
    outputs: Mapping[str, Any],
    written: Mapping[str, FieldFacts],
) -> list[str]:
    """Every problem of one schema's release section (empty when it is sound).

    `outputs` maps each output field to its Avro type, `written` each output field a
    rule writes to what is known of its values.
    """
    problems: list[str] = []
    for name in outputs:
        if name in STAGE_FIELDS:
            continue
        if name not in spec.ladders:
            problems.append(
                f"{where}.release: output field {name!r} has no ladder: every released "
                "field needs one, ending in 'withheld'"
            )
        elif name not in written:
            problems.append(f"{where}.release: {name!r} has a ladder but no rule writes it")
    for name, rungs in spec.ladders.items():
        if name not in outputs:
            problems.append(f"{where}.release.ladders.{name}: not a field of the output schema")
            continue
        if name in STAGE_FIELDS:
            problems.append(f"{where}.release.ladders.{name}: set by the pipeline, not laddered")
            continue
        facts = written.get(name)
        if facts is not None:
            problems.extend(_ladder_problems(f"{where}.release.ladders.{name}", rungs, facts))
    problems.extend(_order_problems(where, spec, written))
    return problems


def _order_problems(where: str, spec: ReleaseSpec, written: Mapping[str, FieldFacts]) -> list[str]:
    problems = []
    order = spec.order
    if len(set(order)) != len(order):
        problems.append(f"{where}.release.order: a field is listed twice")
    missing = sorted(set(spec.ladders) - set(order))
    extra = sorted(set(order) - set(spec.ladders))
    if missing:
        problems.append(f"{where}.release.order: laddered fields not listed: {', '.join(missing)}")
    if extra:
        problems.append(f"{where}.release.order: fields without a ladder: {', '.join(extra)}")
    times = [name for name, facts in written.items() if facts.is_time]
    if len(times) != 1:
        problems.append(f"{where}: exactly one output needs the record time (kind = hour)")
    elif order and order[0] != times[0]:
        problems.append(f"{where}.release.order: must start with the record time {times[0]!r}")
    return problems


def _ladder_problems(where: str, rungs: Sequence[RungSpec], facts: FieldFacts) -> list[str]:
    if not rungs:
        return [f"{where}: a ladder needs at least one rung"]
    if facts.is_time:
        if any(not isinstance(rung, str) or rung not in TIME_RUNGS for rung in rungs):
            return [f"{where}: the record time climbs only {' and '.join(TIME_RUNGS)} rungs"]
        lengths = [TIME_RUNGS[rung][0] for rung in rungs if isinstance(rung, str)]
        if lengths != sorted(set(lengths)):
            return [f"{where}: time rungs must get coarser"]
        return []
    problems = []
    if rungs[-1] != "withheld":
        problems.append(f"{where}: the last rung must be 'withheld'")
    if "withheld" in rungs[:-1]:
        problems.append(f"{where}: 'withheld' can only be the last rung")
    values = facts.values
    length = facts.geohash_precision
    for index, rung in enumerate(rungs):
        at = f"{where}[{index}]"
        if isinstance(rung, str):
            if rung in TIME_RUNGS:
                problems.append(f"{at}: time rungs are for the record time only")
            elif rung not in RUNG_KINDS:
                problems.append(f"{at}: unknown rung {rung!r}")
            elif rung != "withheld" and not _is_string(facts.avro_type):
                problems.append(f"{at}: {rung!r} needs a string field")
            values = None
        elif isinstance(rung, PrefixRung):
            if not _is_string(facts.avro_type):
                problems.append(f"{at}: prefix needs a string field")
            if length is not None and rung.prefix >= length:
                problems.append(f"{at}: prefix {rung.prefix} is not coarser than {length}")
            length = rung.prefix
            values = None
        else:
            problems.extend(_map_problems(at, rung, values, facts.avro_type))
            values = frozenset(rung.map.values())
    return problems


def _map_problems(
    at: str, rung: MapRung, values: frozenset[str] | None, avro_type: Any
) -> list[str]:
    problems = []
    if values is not None and (unlisted := sorted(values - set(rung.map))):
        problems.append(f"{at}: map does not list {', '.join(unlisted)}")
    symbols = _enum_symbols(avro_type)
    if symbols is not None and (unknown := sorted(set(rung.map.values()) - symbols)):
        problems.append(f"{at}: {', '.join(unknown)} not symbols of the output enum")
    return problems


def _rung(spec: RungSpec) -> Rung:
    if isinstance(spec, PrefixRung):
        return prefix(spec.prefix)
    if isinstance(spec, MapRung):
        return mapping(spec.map)
    if spec in TIME_RUNGS:
        length, granularity = TIME_RUNGS[spec]
        return time_bucket(length, granularity)
    return RUNG_KINDS[spec]


class ReleasePlan:
    """One schema's compiled release: ladders in the policy's order (the record time first)."""

    def __init__(
        self,
        schema: str,
        output_schema: str,
        spec: ReleaseSpec,
        constants: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.output_schema = output_schema
        self.ladders: tuple[Ladder, ...] = tuple(
            Ladder(name, tuple(_rung(r) for r in spec.ladders[name]), is_time=index == 0)
            for index, name in enumerate(spec.order)
        )
        self.fields: tuple[str, ...] = tuple(spec.order)
        self.time_field = spec.order[0]
        self.constants = dict(constants)
        self._paths: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = {}
        fields = self.fields
        self._values: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            itemgetter(*fields) if len(fields) > 1 else lambda record: (record[fields[0]],)
        )

    def level0(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The record's level-0 values in the plan's order (the time as its hour bucket)."""
        try:
            values = self._values(record)
        except KeyError:  # a field the record does not have (a policy since changed) is None
            values = (record[self.time_field], *(record.get(name) for name in self.fields[1:]))
        return (time_value(int(values[0])), *values[1:])

    def paths(self, level0: tuple[Any, ...]) -> tuple[tuple[Any, ...], ...]:
        """Each field's values at every rung of its ladder, finest first.

        A person's records mostly repeat one level-0 tuple, so the result is remembered
        per tuple (MEMO_SIZE tuples at most, then it starts over).
        """
        found = self._paths.get(level0)
        if found is None:
            if len(self._paths) >= MEMO_SIZE:
                self._paths.clear()
            found = tuple(
                ladder.values(value) for ladder, value in zip(self.ladders, level0, strict=True)
            )
            self._paths[level0] = found
        return found

    def output(self, content: Sequence[Any]) -> dict[str, Any]:
        """The output record (without anon_id) for one released content tuple."""
        record = dict(zip(self.fields, content, strict=True))
        start, granularity = record[self.time_field]
        record[self.time_field] = start
        record[TIME_GRANULARITY] = granularity
        record.update(self.constants)
        return record

    def timestamp_ms(self, content: Sequence[Any]) -> int:
        """The Kafka timestamp of a released content: the start of its time bucket."""
        start: int = content[0][0]
        return start

    def generalized_fields(self, level0: Sequence[Any], content: Sequence[Any]) -> list[str]:
        """Names of the fields a record was released coarser than its level-0 value."""
        return [
            name
            for name, before, after in zip(self.fields, level0, content, strict=True)
            if before != after
        ]
