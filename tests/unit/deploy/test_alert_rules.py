"""The Prometheus alert rules pass promtool, are unit-tested both ways, and name real metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

import consumers.metrics
import ingest.sdk.metrics
from tests.unit.deploy.promql import (
    PROMETHEUS_OWN_SERIES,
    exported_metric_names,
    metric_names_in_promql,
    rule_expressions,
)

REPO = Path(__file__).resolve().parents[3]
PROM_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
ALERTS_TEST = PROM_DIR / "alerts_test.yml"
CONSUMERS = REPO / "consumers"
CONFIGS = (PROM_DIR / "prometheus.yml", PROM_DIR / "prometheus-local.yml")
WORKER_JOB = "consentgate-workers"
# Labels an annotation may show: where, never who.
SAFE_LABELS = frozenset(
    {"job", "instance", "topic", "partition", "reason", "kind", "cause", "action"}
)
REQUIRED_ALERTS = frozenset(
    {
        "WorkerNotReady",
        "BrokerUnreachable",
        "NoCommitProgress",
        "TransactionsAborting",
        "BatchesFailing",
        "KAnonWindowCapped",
        "ConsumerLagGrowing",
        "DeadLetterRateHigh",
        "ConsentUnknownDropSpike",
        "ResidencyViolation",
        "KAnonSuppressionHigh",
        "NoOutputWhileInputFlows",
    }
)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    groups = _load(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real promtool; its absence is a failure, not a skip."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool is not installed: run `make promtool` (Debian package `prometheus`)",
            pytrace=False,
        )
    return subprocess.run(
        [exe, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_alert_rules() -> None:
    done = _promtool("check", "rules", str(ALERTS.relative_to(REPO)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_alert_rules_pass() -> None:
    done = _promtool("test", "rules", str(ALERTS_TEST.relative_to(REPO)))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_accepts_the_scrape_configs(config: Path) -> None:
    done = _promtool("check", "config", str(config.relative_to(REPO)))
    assert done.returncode == 0, done.stdout + done.stderr


def test_group_consentgate_holds_every_required_alert() -> None:
    groups = _load(ALERTS)["groups"]
    assert [g["name"] for g in groups] == ["consentgate"]
    assert {r["alert"] for r in _rules()} >= REQUIRED_ALERTS


def test_every_alert_has_severity_summary_and_description() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_annotations_show_only_labels_that_name_no_person() -> None:
    for rule in _rules():
        for text in rule["annotations"].values():
            shown = set(re.findall(r"\$labels\.(\w+)", text))
            assert shown <= SAFE_LABELS, (rule["alert"], shown - SAFE_LABELS)


def test_every_alert_has_a_firing_and_a_quiet_test_case() -> None:
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for case in _load(ALERTS_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            outcomes[check["alertname"]].add(bool(check.get("exp_alerts")))
    for rule in _rules():
        assert outcomes[rule["alert"]] == {True, False}, rule["alert"]


def test_alert_expressions_name_only_exported_metrics() -> None:
    known = exported_metric_names(consumers.metrics, ingest.sdk.metrics) | PROMETHEUS_OWN_SERIES
    exprs = rule_expressions(_load(ALERTS))
    assert exprs
    for expr in exprs:
        names = metric_names_in_promql(expr)
        assert names, expr
        assert names <= known, sorted(names - known)


def test_transaction_outcomes_in_alerts_are_ones_the_worker_counts() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CONSUMERS.glob("*.py")))
    counted = set(re.findall(r'TRANSACTIONS\.labels\("(\w+)"\)', source))
    assert counted >= {"committed", "aborted"}
    selected = {
        outcome
        for expr in rule_expressions(_load(ALERTS))
        for outcome in re.findall(r'consentgate_transactions_total\{[^}]*outcome="(\w+)"', expr)
    }
    assert selected
    assert selected <= counted, sorted(selected - counted)


def test_alerts_select_the_job_that_scrapes_the_workers() -> None:
    for config in CONFIGS:
        jobs = {job["job_name"] for job in _load(config)["scrape_configs"]}
        assert WORKER_JOB in jobs, config.name
        assert _load(config)["rule_files"] == ["alerts.yml"], config.name
    selectors = [r["expr"] for r in _rules() if "job=" in r["expr"]]
    assert selectors
    for expr in selectors:
        assert f'job="{WORKER_JOB}"' in expr, expr


def test_local_workers_are_scraped_on_9400_plus_their_index() -> None:
    jobs = _load(PROM_DIR / "prometheus-local.yml")["scrape_configs"]
    (job,) = [j for j in jobs if j["job_name"] == WORKER_JOB]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"127.0.0.1:{9400 + i}" for i in range(len(targets))]
