"""Quantiles of samples, and the summary of a scraped histogram."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ingest.metrics_text import Samples, metric_sum, quantile_of


def quantile(samples: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of samples by the nearest-rank method; nan when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def histogram_summary(samples: Samples, name: str, scale: float = 1000.0) -> dict[str, float]:
    """p50, p99 (interpolated, times `scale`; nan when empty) and the count of one histogram."""
    p50, p99 = quantile_of(samples, name, 0.50), quantile_of(samples, name, 0.99)
    return {
        "p50": math.nan if p50 is None else round(p50 * scale, 1),
        "p99": math.nan if p99 is None else round(p99 * scale, 1),
        "count": metric_sum(samples, name + "_count"),
    }
