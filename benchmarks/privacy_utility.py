"""What analysts keep: released records against the consented input the oracle gives.

`utility` turns released records and `benchmarks.privacy_oracle.candidates` into the
privacy report's figures: the shares of records keeping location, device and OS, and
the errors of COUNT query templates answered from the released records.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.privacy_oracle import _VERSION, HOUR_MS, Candidate, time_fits

Level = Callable[[str, Any], Any]
"""Maps a field's released value (or a raw value, when exact) to a query's precision, or
returns COARSER when the value says less than the query asks."""
COARSER = object()


def _geo(precision: int) -> Level:
    def level(_name: str, value: Any) -> Any:
        return value[:precision] if isinstance(value, str) and len(value) >= precision else COARSER

    return level


def _same(_name: str, value: Any) -> Any:
    return COARSER if value is None else value


def _hour(_name: str, value: Any) -> Any:
    start, granularity = value
    return start if granularity == "HOUR" else COARSER


def _major_minor(_name: str, value: Any) -> Any:
    return value if isinstance(value, str) and "." in value else COARSER


@dataclass(frozen=True, slots=True)
class Query:
    """A COUNT query template: schema and, per field, the precision it groups by."""

    name: str
    schema: str
    fields: tuple[tuple[str, Level], ...]


QUERIES: tuple[Query, ...] = (
    Query("hour x area(gh2)", "device_event", (("time", _hour), ("geohash", _geo(2)))),
    Query("hour x area(gh1) x brand", "device_event",
          (("time", _hour), ("geohash", _geo(1)), ("brand", _same))),
    Query("hour x area(gh1) x OS", "device_event",
          (("time", _hour), ("geohash", _geo(1)), ("os_name", _same))),
    Query("hour x brand x model", "device_event",
          (("time", _hour), ("brand", _same), ("model", _same))),
    Query("hour x OS x log type", "log_event",
          (("time", _hour), ("os_name", _same), ("log_type", _same))),
    Query("hour x brand x log type", "log_event",
          (("time", _hour), ("brand", _same), ("log_type", _same))),
    Query("hour x model x log type", "log_event",
          (("time", _hour), ("model", _same), ("log_type", _same))),
    Query("hour x app version x log type", "log_event",
          (("time", _hour), ("app_version", _major_minor), ("log_type", _same))),
)  # fmt: skip
"""Query templates: a located area is a geohash prefix; 5 % of all records of a schema
is a large share, so areas are coarse (35 % of device records carry a location)."""
MIN_SELECTIVITY = 0.05


def _truth_value(name: str, candidate: Candidate, level: Level) -> Any:
    """A candidate's exact value at a query's precision (the raw truth)."""
    if name == "time":
        return level(name, (candidate.time_ms - candidate.time_ms % HOUR_MS, "HOUR"))
    raw = candidate.values.get(name)
    if name in ("os_version", "app_version"):
        match = _VERSION.search(raw) if isinstance(raw, str) else None
        if match is None or match.group(2) is None:
            return COARSER
        raw = f"{int(match.group(1))}.{int(match.group(2))}"
    return level(name, raw)


def _released_value(name: str, record: Mapping[str, Any]) -> Any:
    if name == "time":
        return (record["event_hour"], record["time_granularity"])
    return record.get(name)


def _consistent(name: str, coarse: Any, specific: Any) -> bool:
    """Whether a query-precision value lies under a coarser released value."""
    if coarse is None:
        return True
    if name == "time":
        start, granularity = coarse
        return bool(time_fits(specific, start, granularity))
    if name == "geohash":
        return str(specific).startswith(coarse)
    if name in ("os_version", "app_version"):
        return str(specific).startswith(f"{coarse}.")
    return bool(coarse == specific)


def count_errors(
    released: Sequence[tuple[str, Mapping[str, Any]]], truth: Sequence[Candidate]
) -> dict[str, list[float]]:
    """Relative error of every COUNT query at selectivity >= MIN_SELECTIVITY, per template.

    The estimate counts released records that match; a record released coarser than the
    query spreads over the query's values in proportion to the released records that are
    precise enough and lie under its coarse value (what an analyst can do with the data).
    A record released without a location counts in no area: an analyst cannot tell a
    withheld location from none at all.
    """
    errors: dict[str, list[float]] = {}
    for query in QUERIES:
        rows = [c for c in truth if c.schema == query.schema]
        true_counts = Counter(
            tuple(_truth_value(n, c, level) for n, level in query.fields) for c in rows
        )
        records = [r for s, r in released if s == query.schema]
        precise: list[Counter[Any]] = [Counter() for _ in query.fields]
        for record in records:
            for i, (name, level) in enumerate(query.fields):
                value = level(name, _released_value(name, record))
                if value is not COARSER:
                    precise[i][value] += 1
        estimate: Counter[tuple[Any, ...]] = Counter()
        spread: dict[tuple[int, Any], list[tuple[Any, float]]] = {}
        for record in records:
            options: list[list[tuple[Any, float]]] = []
            for i, (name, level) in enumerate(query.fields):
                raw = _released_value(name, record)
                value = level(name, raw)
                if value is not COARSER:
                    options.append([(value, 1.0)])
                    continue
                if name == "geohash" and raw is None:
                    options.append([])  # no location or withheld: analysts cannot tell, and
                    continue  # count it in no area
                key = (i, raw)
                if key not in spread:
                    under = [(v, n) for v, n in precise[i].items() if _consistent(name, raw, v)]
                    total = sum(n for _v, n in under)
                    spread[key] = [(v, n / total) for v, n in under] if total else []
                options.append(spread[key])
            _accumulate(estimate, options)
        threshold = MIN_SELECTIVITY * len(rows)
        errors[query.name] = [
            abs(estimate.get(key, 0.0) - n) / n
            for key, n in true_counts.items()
            if n >= threshold and COARSER not in key and None not in key
        ]
    return errors


def _accumulate(estimate: Counter[tuple[Any, ...]], options: list[list[tuple[Any, float]]]) -> None:
    combos: list[tuple[tuple[Any, ...], float]] = [((), 1.0)]
    for choices in options:
        combos = [((*key, v), w * share) for key, w in combos for v, share in choices]
    for key, weight in combos:
        estimate[key] += weight  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Utility:
    """What analysts keep, measured against the consented input."""

    consented: int
    released: int
    located: int
    geohash_at_least: dict[int, float]
    kept: dict[str, float]
    count_error_median: float | None
    count_queries: int
    count_error_by_query: dict[str, float | None]


def utility(
    released: Sequence[tuple[str, Mapping[str, Any]]], truth: Sequence[Candidate]
) -> Utility:
    """Shares of records keeping location, device and OS, and COUNT query errors."""
    located = sum(1 for c in truth if c.schema == "device_event" and c.values.get("geohash"))
    device_out = [r for s, r in released if s == "device_event"]
    geo = {
        p: sum(1 for r in device_out if r.get("geohash") and len(r["geohash"]) >= p)
        / max(located, 1)
        for p in (5, 4, 3)
    }
    kept = {}
    for name in ("brand", "model", "os_name", "os_version", "app_version"):
        have = sum(1 for c in truth if c.values.get(name) is not None)
        kept[name] = sum(1 for _s, r in released if r.get(name) is not None) / max(have, 1)
    kept["hour"] = sum(1 for _s, r in released if r["time_granularity"] == "HOUR") / max(
        len(truth), 1
    )
    errors = count_errors(released, truth)
    every = [e for values in errors.values() for e in values]
    return Utility(
        consented=len(truth),
        released=len(released),
        located=located,
        geohash_at_least=geo,
        kept=kept,
        count_error_median=statistics.median(every) if every else None,
        count_queries=len(every),
        count_error_by_query={
            name: (statistics.median(v) if v else None) for name, v in errors.items()
        },
    )
