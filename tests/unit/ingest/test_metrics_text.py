"""Reading a scrape: labels, escaped label values, histogram buckets, sums over workers."""

from __future__ import annotations

import math

import pytest

from ingest.errors import MetricsTextError
from ingest.metrics_text import (
    Series,
    by_label,
    declared_series,
    histogram_quantile,
    merge,
    metric_sum,
    parse_exposition,
    quantile_of,
)

TEXT = r"""# HELP consentgate_dropped_total Records removed, by reason.
# TYPE consentgate_dropped_total counter
consentgate_dropped_total{reason="unknown_user"} 3.0
consentgate_dropped_total{reason="consent_withdrawn"} 2.0
consentgate_dropped_created{reason="unknown_user"} 1.7e+09
# HELP consentgate_kanon_pending Records held.
# TYPE consentgate_kanon_pending gauge
consentgate_kanon_pending 4.0
# HELP consentgate_produced_total Records produced, by role.
# TYPE consentgate_produced_total counter
consentgate_produced_total{role="anon_log",event_type="log_event"} 5.0
consentgate_produced_total{role="anon_log",event_type="device_event"} 1.0
consentgate_produced_total{role="say \"hi\", a\\b\nc",event_type="x"} 7.0
# HELP consentgate_kanon_hold_seconds Hold.
# TYPE consentgate_kanon_hold_seconds histogram
consentgate_kanon_hold_seconds_bucket{le="0.1"} 50.0
consentgate_kanon_hold_seconds_bucket{le="0.5"} 90.0
consentgate_kanon_hold_seconds_bucket{le="1.0"} 100.0
consentgate_kanon_hold_seconds_bucket{le="+Inf"} 100.0
consentgate_kanon_hold_seconds_count 100.0
consentgate_kanon_hold_seconds_sum 21.5
# HELP consentgate_minor_records_total Records of minors, by outcome.
# TYPE consentgate_minor_records_total counter
"""


def test_samples_keep_their_names_and_sorted_labels() -> None:
    samples = parse_exposition(TEXT)
    assert samples[Series("consentgate_dropped_total", (("reason", "unknown_user"),))] == 3.0
    assert samples[Series("consentgate_kanon_pending")] == 4.0
    key = Series("consentgate_produced_total", (("event_type", "log_event"), ("role", "anon_log")))
    assert samples[key] == 5.0
    assert samples[Series("consentgate_kanon_hold_seconds_bucket", (("le", "+Inf"),))] == 100.0


def test_escaped_label_values_are_read_as_written() -> None:
    roles = by_label(parse_exposition(TEXT), "consentgate_produced_total", "role")
    assert roles == {"anon_log": 6.0, 'say "hi", a\\b\nc': 7.0}


def test_a_metric_sums_over_its_labels_or_the_ones_asked_for() -> None:
    samples = parse_exposition(TEXT)
    assert metric_sum(samples, "consentgate_dropped_total") == 5.0
    assert metric_sum(samples, "consentgate_dropped_total", reason="unknown_user") == 3.0
    assert metric_sum(samples, "consentgate_dropped_total", reason="nobody") == 0.0
    assert metric_sum(samples, "consentgate_produced_total", role="anon_log") == 6.0
    assert metric_sum(samples, "consentgate_dropped") == 0.0  # the family name is no sample


def test_workers_add_up() -> None:
    merged = merge([parse_exposition(TEXT), parse_exposition(TEXT)])
    assert metric_sum(merged, "consentgate_dropped_total") == 10.0
    assert metric_sum(merged, "consentgate_dropped_total", reason="unknown_user") == 6.0
    assert metric_sum(merged, "consentgate_kanon_pending") == 8.0
    assert by_label(merged, "consentgate_dropped_total", "reason") == {
        "unknown_user": 6.0,
        "consent_withdrawn": 4.0,
    }


def test_histogram_buckets_up_to_inf_give_interpolated_quantiles() -> None:
    samples = merge([parse_exposition(TEXT), parse_exposition(TEXT)])
    assert quantile_of(samples, "consentgate_kanon_hold_seconds", 0.5) == 0.1
    assert abs((quantile_of(samples, "consentgate_kanon_hold_seconds", 0.7) or 0) - 0.3) < 1e-9
    assert quantile_of(samples, "consentgate_batch_duration_seconds", 0.5) is None


def test_declared_series_include_labelled_metrics_without_samples() -> None:
    names = declared_series(TEXT)
    assert {
        "consentgate_dropped_total",
        "consentgate_dropped_created",
        "consentgate_kanon_pending",
        "consentgate_kanon_hold_seconds_bucket",
        "consentgate_kanon_hold_seconds_count",
        "consentgate_kanon_hold_seconds_sum",
        "consentgate_minor_records_total",
    } <= names
    assert "consentgate_minor_records_total_total" not in names


def test_text_that_is_not_the_format_is_refused() -> None:
    with pytest.raises(MetricsTextError):
        parse_exposition('consentgate_dropped_total{reason="unclosed} 1\n')


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 up to 0.1 s, 40 more up to 0.5 s, 10 more up to 1 s.
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == 0.1
    assert abs((histogram_quantile(0.7, buckets) or 0) - 0.3) < 1e-9
    assert abs((histogram_quantile(0.95, buckets) or 0) - 0.75) < 1e-9


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, {0.1: 50.0, 1.0: 90.0, math.inf: 100.0}) == 1.0


def test_quantile_of_an_empty_histogram_is_none() -> None:
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
