"""The PromQL metric-name extractor that the dashboard and rule checks rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import consumers.metrics
import ingest.sdk.metrics
from tests.unit.deploy.promql import (
    dashboard_expressions,
    exported_metric_names,
    metric_names_in_promql,
)

CASES = [
    ("up", {"up"}),
    ('consentgate_ready{job="w", instance=~"$instance"} == 0', {"consentgate_ready"}),
    (
        "histogram_quantile(0.99, sum by (le) "
        "(rate(consentgate_batch_duration_seconds_bucket[$__rate_interval])))",
        {"consentgate_batch_duration_seconds_bucket"},
    ),
    (
        "sum(rate(a_total[5m])) by (reason) / ignoring (reason) group_left sum(rate(b_total[5m]))",
        {"a_total", "b_total"},
    ),
    ("deriv(sum by (job, topic) (lag_records)[10m:1m]) > 0", {"lag_records"}),
    ("x > 0 and on (job) y offset 5m unless z", {"x", "y", "z"}),
    ('{__name__="named_by_label", job="j"}', {"named_by_label"}),
    ("sum(rate(a_total[1m])) or vector(0)", {"a_total"}),
    ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
    ("max_over_time(g[1h]) * 1e3 + 0x10 - Inf", {"g"}),
    ("topk(5, sum without (instance) (rate(c_total[5m])))", {"c_total"}),
    ("m == bool 1", {"m"}),
    ("rate(s_total[5m] @ end())", {"s_total"}),
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_metric_names_are_read_from_promql(expr: str, expected: set[str]) -> None:
    assert metric_names_in_promql(expr) == expected


def test_label_names_in_strings_and_matchers_are_not_metric_names() -> None:
    expr = 'sum by (reason) (rate(d_total{reason="unknown_user", kind!~"x|y"}[5m]))'
    assert metric_names_in_promql(expr) == {"d_total"}


def test_dashboard_expressions_include_nested_rows_and_query_variables(tmp_path: Path) -> None:
    board = {
        "panels": [
            {"id": 1, "type": "timeseries", "targets": [{"refId": "A", "expr": "a_total"}]},
            {
                "id": 2,
                "type": "row",
                "collapsed": True,
                "panels": [{"id": 3, "targets": [{"refId": "A", "expr": "b"}, {"refId": "B"}]}],
            },
        ],
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                {"type": "query", "name": "job", "query": "label_values(c_ready, job)"},
                {
                    "type": "query",
                    "name": "instance",
                    "query": {"query": 'label_values(d{job=~"$job"}, instance)'},
                },
            ]
        },
    }
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board), encoding="utf-8")
    exprs = dashboard_expressions(path)
    assert exprs == ["a_total", "b", "c_ready", 'd{job=~"$job"}']


def test_exported_names_carry_the_exposition_suffixes_of_each_type() -> None:
    names = exported_metric_names(consumers.metrics, ingest.sdk.metrics)
    assert {
        "consentgate_consumed_total",
        "consentgate_ready",
        "consentgate_batch_duration_seconds_bucket",
        "consentgate_batch_duration_seconds_sum",
        "consentgate_batch_duration_seconds_count",
        "consentgate_published_total",
    } <= names
    assert "consentgate_consumed" not in names
    assert "consentgate_ready_total" not in names
    assert "consentgate_batch_duration_seconds" not in names
