"""Summarize scraped worker metrics: totals across workers, latency quantiles, a table."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_exposition(text: str) -> Samples:
    """Prometheus text format to {(name, sorted labels): value}."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = tuple(sorted(_LABEL.findall(match.group("labels") or "")))
        try:
            out[(match.group("name"), labels)] = float(match.group("value"))
        except ValueError:
            continue
    return out


def merge(scrapes: Iterable[Samples]) -> Samples:
    """Add samples of several workers together (counters and gauges alike)."""
    total: Samples = defaultdict(float)
    for samples in scrapes:
        for key, value in samples.items():
            total[key] += value
    return dict(total)


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of a metric over all label sets (restricted to the given label values)."""
    return sum(
        value
        for (n, labels), value in samples.items()
        if n == name and all(dict(labels).get(k) == v for k, v in match.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """A metric's values summed per value of one label."""
    out: dict[str, float] = defaultdict(float)
    for (n, labels), value in samples.items():
        if n == name:
            out[dict(labels).get(label, "")] += value
    return dict(out)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus-style quantile from cumulative bucket counts {upper bound: count}."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1]


def quantile_of(samples: Samples, histogram: str, q: float) -> float | None:
    """Quantile of a histogram metric (seconds) summed over workers."""
    buckets: dict[float, float] = defaultdict(float)
    for (n, labels), value in samples.items():
        if n == histogram + "_bucket":
            le = dict(labels).get("le", "+Inf")
            buckets[math.inf if le == "+Inf" else float(le)] += value
    return histogram_quantile(q, buckets)


def summary_table(samples: Samples, published: int) -> str:
    """The demo's closing table: in, forwarded, dropped by reason, dead letters, latency."""
    rows: list[tuple[str, str]] = [
        ("events published", f"{published:,}"),
        ("events consumed", f"{total(samples, 'consentgate_consumed_total'):,.0f}"),
        ("forwarded (anonymized)", f"{total(samples, 'consentgate_forwarded_total'):,.0f}"),
    ]
    for reason, value in sorted(by_label(samples, "consentgate_dropped_total", "reason").items()):
        rows.append((f"dropped: {reason}", f"{value:,.0f}"))
    rows += [
        ("dead-lettered", f"{total(samples, 'consentgate_dead_lettered_total'):,.0f}"),
        ("k-anon suppressed", f"{total(samples, 'consentgate_kanon_suppressed_total'):,.0f}"),
        (
            "k-anon fields generalized",
            f"{total(samples, 'consentgate_kanon_generalized_total'):,.0f}",
        ),
        ("still held (k-anon)", f"{total(samples, 'consentgate_kanon_pending'):,.0f}"),
        ("erasure requests", f"{total(samples, 'consentgate_erasure_requests_total'):,.0f}"),
    ]
    for label, name in (
        ("latency excl. hold", "consentgate_end_to_end_latency_seconds"),
        ("k-anon hold", "consentgate_kanon_hold_seconds"),
    ):
        p50, p99 = quantile_of(samples, name, 0.5), quantile_of(samples, name, 0.99)
        if p50 is not None and p99 is not None:
            rows.append((f"{label} p50 / p99", f"{p50 * 1000:,.0f} ms / {p99 * 1000:,.0f} ms"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v:>16}" for k, v in rows)
