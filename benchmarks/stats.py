"""Quantiles of samples and of Prometheus histograms."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of samples by the nearest-rank method; nan when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def histogram_buckets(samples: dict[str, float], name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of one histogram, summed over label sets."""
    acc: dict[float, float] = {}
    prefix = name + "_bucket{"
    for key, value in samples.items():
        if not key.startswith(prefix):
            continue
        le_text = key.split('le="', 1)[1].split('"', 1)[0]
        bound = math.inf if le_text == "+Inf" else float(le_text)
        acc[bound] = acc.get(bound, 0.0) + value
    return sorted(acc.items())


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile: linear interpolation inside the bucket holding rank q."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            span = count - lower_count
            share = (rank - lower_count) / span if span > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def histogram_summary(
    samples: dict[str, float], name: str, scale: float = 1000.0
) -> dict[str, float]:
    """p50, p99 (interpolated, times `scale`) and the count of one histogram."""
    buckets = histogram_buckets(samples, name)
    out = {
        "p50": round(histogram_quantile(buckets, 0.50) * scale, 1),
        "p99": round(histogram_quantile(buckets, 0.99) * scale, 1),
        "count": buckets[-1][1] if buckets else 0.0,
    }
    return out
