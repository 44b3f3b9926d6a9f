"""Metric names in PromQL expressions, dashboards and rule files, and the names the code exports.

A small lexer, not a PromQL parser: it removes strings, label matchers, range
selectors, grouping clauses, Grafana variables and function calls, and what
is left that looks like an identifier is a metric name. Good enough for the
expressions this project ships, and strict: anything it cannot place counts
as a metric name, so a check built on it fails rather than passes silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

# Words PromQL reserves between operands (binary operators, modifiers, literals).
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "atan2",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)
# Series that Prometheus itself writes for every target.
PROMETHEUS_OWN_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)
# Sample-name suffixes per metric type, as the text exposition writes them.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]*)"')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_TOKEN = re.compile(
    r"(?P<number>(?:0x[0-9a-fA-F]+|\d[\w.]*(?:[eE][+-]?\d+)?))"
    r"|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?"
)
_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((?P<inner>.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\s*\((?P<inner>.*)\)\s*$", re.S)


def metric_names_in_promql(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (function names, labels and keywords excluded)."""
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VAR.sub(" ", text)
    text = _BRACES.sub(" ", text)
    # Subqueries nest a range inside brackets only after a selector, never
    # brackets inside brackets, so one pass clears ranges and subquery steps.
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for match in _TOKEN.finditer(text):
        ident = match.group("ident")
        if ident is None or match.group("call"):
            continue
        if ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_expressions(path: Path | str) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets and query variables."""
    board = json.loads(Path(path).read_text(encoding="utf-8"))
    exprs = [
        str(target["expr"])
        for panel in _panels(board.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not query:
            continue
        # label_values(selector, label) and query_result(expr) are Grafana's,
        # not PromQL; the selector / expression inside is.
        for pattern in (_LABEL_VALUES, _QUERY_RESULT):
            found = pattern.match(query)
            if found:
                exprs.append(found.group("inner"))
                break
    return exprs


def rule_expressions(rules: dict[str, Any]) -> list[str]:
    """Every `expr` of a loaded Prometheus rule file."""
    return [str(rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def exported_metric_names(*modules: ModuleType) -> set[str]:
    """Sample names the metric objects of these modules can expose, suffixes included."""
    names: set[str] = set()
    for module in modules:
        for value in vars(module).values():
            if not isinstance(value, MetricWrapperBase):
                continue
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names
