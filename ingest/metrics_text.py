"""Prometheus text format, read in one place: a scrape's samples, their sums and quantiles.

prometheus_client's own parser reads the text; this module keys its samples by name and
labels and answers what callers ask of a scrape: a metric summed over its labels, split
by one label, added up over workers, or a histogram's quantile. The parser names a
counter's family without `_total`; its samples keep it (`consentgate_consumed_total`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ingest.errors import MetricsTextError


class Series(NamedTuple):
    """One series of a scrape: its sample name and its labels, sorted by label name."""

    name: str
    labels: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        """`name{label="value",...}`, values as read (unescaped): for messages."""
        labels = ",".join(f'{key}="{value}"' for key, value in self.labels)
        return f"{self.name}{{{labels}}}" if labels else self.name


Samples = dict[Series, float]

_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
"""The sample names a family of each type exports, after its family name."""


def _families(text: str) -> list[Metric]:
    try:
        return list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise MetricsTextError(f"not Prometheus text format: {exc}") from exc


def parse_exposition(text: str) -> Samples:
    """Every sample of a scrape (all series, counters under their `_total` name)."""
    return {
        Series(sample.name, tuple(sorted(sample.labels.items()))): float(sample.value)
        for family in _families(text)
        for sample in family.samples
    }


def declared_series(text: str) -> set[str]:
    """Every sample name a scrape declares: a labelled metric with no labels set yet
    exports only its `# TYPE` line, and counts here all the same."""
    names: set[str] = set()
    for family in _families(text):
        names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def merge(scrapes: Iterable[Samples]) -> Samples:
    """Samples of several workers added together (counters and gauges alike)."""
    out: Samples = defaultdict(float)
    for samples in scrapes:
        for series, value in samples.items():
            out[series] += value
    return dict(out)


def metric_sum(samples: Samples, name: str, /, **labels: str) -> float:
    """Sum of a metric over its label sets, restricted to those with the given label values."""
    return sum(
        value for series, value in samples.items() if series.name == name and _has(series, labels)
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """A metric's values summed per value of one label ("" where the label is absent)."""
    out: dict[str, float] = defaultdict(float)
    for series, value in samples.items():
        if series.name == name:
            out[dict(series.labels).get(label, "")] += value
    return dict(out)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's quantile from cumulative bucket counts {upper bound: count}: linear
    within the bucket holding rank q; None for an empty histogram."""
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
    """Quantile of a histogram metric summed over its other labels (and over workers)."""
    buckets: dict[float, float] = defaultdict(float)
    for series, value in samples.items():
        if series.name == histogram + "_bucket":
            buckets[float(dict(series.labels)["le"])] += value
    return histogram_quantile(q, buckets)


def _has(series: Series, labels: Mapping[str, str]) -> bool:
    present = dict(series.labels)
    return all(present.get(key) == value for key, value in labels.items())
