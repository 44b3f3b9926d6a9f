"""The Grafana dashboard is well formed, laid out without overlaps and shows only real metrics."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.metrics import MetricWrapperBase

import consumers.metrics
import ingest.sdk.metrics
from tests.unit.deploy.promql import (
    dashboard_expressions,
    exported_metric_names,
    metric_names_in_promql,
)

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "deploy" / "grafana" / "consentgate-dashboard.json"
SCHEMA = REPO / "deploy" / "grafana" / "dashboard.schema.json"
GRID_WIDTH = 24
SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _board() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return board


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _all_panels(panel.get("panels", []))


def overlapping_pairs(panels: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Ids of panel pairs whose grid rectangles share at least one cell."""
    pairs = []
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            ga, gb = a["gridPos"], b["gridPos"]
            apart = (
                ga["x"] + ga["w"] <= gb["x"]
                or gb["x"] + gb["w"] <= ga["x"]
                or ga["y"] + ga["h"] <= gb["y"]
                or gb["y"] + gb["h"] <= ga["y"]
            )
            if not apart:
                pairs.append((a["id"], b["id"]))
    return pairs


def test_dashboard_matches_the_schema() -> None:
    errors = [e.message for e in _validator().iter_errors(_board())]
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda b: b.pop("uid"),
        lambda b: b["panels"][1]["targets"][0].pop("refId"),
        lambda b: b["panels"][1].update(gridPos={"h": 8, "w": 30, "x": 0, "y": 0}),
        lambda b: b["panels"][1].pop("targets"),
    ],
    ids=["no uid", "target without refId", "panel wider than the grid", "panel without targets"],
)
def test_schema_rejects_a_broken_dashboard(breakage: Any) -> None:
    board = copy.deepcopy(_board())
    assert board["panels"][1]["type"] != "row"
    breakage(board)
    assert list(_validator().iter_errors(board))


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in _all_panels(_board()["panels"])]
    assert len(ids) == len(set(ids))


def test_panels_stay_inside_the_grid_and_do_not_overlap() -> None:
    panels = list(_all_panels(_board()["panels"]))
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= GRID_WIDTH, panel["title"]
    assert overlapping_pairs(panels) == []


def test_overlap_check_finds_panels_sharing_a_cell() -> None:
    a = {"id": 1, "gridPos": {"h": 4, "w": 12, "x": 0, "y": 0}}
    b = {"id": 2, "gridPos": {"h": 4, "w": 12, "x": 11, "y": 3}}
    c = {"id": 3, "gridPos": {"h": 4, "w": 12, "x": 12, "y": 0}}
    assert overlapping_pairs([a, b, c]) == [(1, 2), (2, 3)]


def test_every_expression_names_only_metrics_the_code_exports() -> None:
    known = exported_metric_names(consumers.metrics, ingest.sdk.metrics)
    exprs = dashboard_expressions(DASHBOARD)
    assert len(exprs) > 20
    for expr in exprs:
        names = metric_names_in_promql(expr)
        assert names, expr
        assert names <= known, sorted(names - known)


def test_every_exported_metric_is_on_the_dashboard() -> None:
    shown = {n for e in dashboard_expressions(DASHBOARD) for n in metric_names_in_promql(e)}
    families = {
        family.name
        for module in (consumers.metrics, ingest.sdk.metrics)
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    }
    assert len(families) > 25
    missing = {f for f in families if not shown & {f + s for s in SAMPLE_SUFFIXES}}
    assert missing == set()


def test_quantiles_come_from_bucket_rates_grouped_by_le() -> None:
    quantiles = [e for e in dashboard_expressions(DASHBOARD) if "histogram_quantile" in e]
    assert len(quantiles) >= 6
    for expr in quantiles:
        assert re.search(r"by \([^)]*\ble\b[^)]*\)", expr), expr
        assert all(n.endswith("_bucket") for n in metric_names_in_promql(expr)), expr


def test_panels_use_the_datasource_variable() -> None:
    board = _board()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _all_panels(board["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
