"""The demo summary's arithmetic: parsing, merging workers, histogram quantiles."""

from __future__ import annotations

import math

from ingest.run_summary import histogram_quantile, merge, parse_exposition, total

TEXT = """# HELP consentgate_dropped_total x
consentgate_dropped_total{reason="unknown_user"} 3.0
consentgate_dropped_total{reason="consent_withdrawn"} 2.0
consentgate_kanon_pending 4.0
"""


def test_exposition_is_parsed_and_workers_add_up() -> None:
    merged = merge([parse_exposition(TEXT), parse_exposition(TEXT)])
    assert total(merged, "consentgate_dropped_total") == 10.0
    assert total(merged, "consentgate_dropped_total", reason="unknown_user") == 6.0
    assert total(merged, "consentgate_kanon_pending") == 8.0


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 up to 0.1 s, 40 more up to 0.5 s, 10 more up to 1 s.
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == 0.1
    assert abs((histogram_quantile(0.7, buckets) or 0) - 0.3) < 1e-9
    assert abs((histogram_quantile(0.95, buckets) or 0) - 0.75) < 1e-9


def test_quantile_of_an_empty_histogram_is_none() -> None:
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
