"""The docker-compose stack: three mainland KRaft brokers, set-up before workers, wired metrics."""

from __future__ import annotations

import fnmatch
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.settings import PLACEHOLDER_SECRETS, PipelineSettings, load_pipeline_settings
from ingest.kafka.config import KafkaSettings

REPO = Path(__file__).resolve().parents[3]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
GRAFANA = REPO / "deploy" / "grafana"
MAINLAND_RACKS = ("cn-north-*", "cn-east-*")
# ${NAME}, ${NAME:-default}, ${NAME:?error}: compose's interpolation forms.
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    return services


def _brokers() -> dict[str, Any]:
    return {
        k: s for k, s in _services().items() if str(s.get("image", "")).startswith("apache/kafka")
    }


def _workers() -> dict[str, Any]:
    return {k: s for k, s in _services().items() if s.get("command") == ["consentgate", "run"]}


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's variable substitution with `given` as the environment."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        if kind == "?":
            raise KeyError(name)
        return rest or ""

    return _INTERPOLATION.sub(one, value)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_three_kraft_brokers_sit_in_distinct_mainland_racks() -> None:
    brokers = _brokers()
    assert len(brokers) == 3
    racks = [b["environment"]["KAFKA_BROKER_RACK"] for b in brokers.values()]
    assert len(set(racks)) == 3
    for rack in racks:
        assert any(fnmatch.fnmatchcase(rack, p) for p in MAINLAND_RACKS), rack
    for broker in brokers.values():
        env = broker["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_brokers_form_one_quorum_with_distinct_node_ids() -> None:
    envs = [b["environment"] for b in _brokers().values()]
    assert len({e["CLUSTER_ID"] for e in envs}) == 1
    ids = {int(e["KAFKA_NODE_ID"]) for e in envs}
    assert len(ids) == 3
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in envs}
    assert len(voters) == 1
    voter_ids = {int(v.split("@")[0]) for v in voters.pop().split(",")}
    assert voter_ids == ids


def test_internal_replication_survives_one_broker_down() -> None:
    for broker in _brokers().values():
        env = broker["environment"]
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2


def test_topic_setup_runs_once_after_every_broker_is_healthy() -> None:
    topics = _services()["topics"]
    assert topics["command"] == ["consentgate", "topics", "create", "--replication", "3"]
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {name: {"condition": "service_healthy"} for name in _brokers()}


def test_two_workers_start_after_topic_setup_with_distinct_indices() -> None:
    workers = _workers()
    assert len(workers) == 2
    indices = [int(w["environment"]["CONSENTGATE_WORKER_INDEX"]) for w in workers.values()]
    assert sorted(indices) == [0, 1]
    for worker in workers.values():
        assert worker["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}


def test_each_worker_publishes_and_probes_9400_plus_its_index() -> None:
    for name, worker in _workers().items():
        port = 9400 + int(worker["environment"]["CONSENTGATE_WORKER_INDEX"])
        assert worker["ports"] == [f"{port}:{port}"], name
        assert worker["environment"]["CONSENTGATE_METRICS_HOST"] == "0.0.0.0", name
        assert f"127.0.0.1:{port}/readyz" in " ".join(worker["healthcheck"]["test"]), name


def test_prometheus_scrapes_every_worker_and_loads_the_rules() -> None:
    prometheus = _services()["prometheus"]
    assert "../prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = _yaml(REPO / "deploy" / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "consentgate-workers"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {
        f"{name}:{9400 + int(w['environment']['CONSENTGATE_WORKER_INDEX'])}"
        for name, w in _workers().items()
    }
    assert targets == expected


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = _services()["grafana"]
    datasources = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in _services()["prometheus"]["ports"]
    providers = _yaml(GRAFANA / "provisioning" / "dashboards" / "consentgate.yml")
    (provider,) = providers["providers"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["../grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboard_target = mounts["../grafana/consentgate-dashboard.json"]
    assert Path(dashboard_target).parent == Path(provider["options"]["path"])
    for host in mounts:
        if host.startswith("."):
            assert (COMPOSE_DIR / host).exists(), host


def test_a_simulator_publishes_after_topic_setup() -> None:
    simulator = _services()["simulator"]
    assert simulator["command"][:2] == ["consentgate", "simulate"]
    assert simulator["depends_on"] == {"topics": {"condition": "service_completed_successfully"}}


def test_secrets_are_required_from_the_environment_not_written_in_the_file() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name in ("CONSENTGATE_KANON_PERSON_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), name
    example = (COMPOSE_DIR / ".env.example").read_text(encoding="utf-8")
    values = dict(
        line.split("=", 1) for line in example.splitlines() if "=" in line and line[0] != "#"
    )
    assert values["CONSENTGATE_KANON_PERSON_KEY"].lower() in PLACEHOLDER_SECRETS


def test_worker_environment_is_accepted_by_the_pipeline_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = {
        "CONSENTGATE_KANON_PERSON_KEY": secrets.token_urlsafe(32),
        "CONSENTGATE_TOPIC_PREFIX": "",
    }
    for worker in _workers().values():
        for key, value in worker["environment"].items():
            monkeypatch.setenv(key, _interpolate(str(value), given))
        settings = load_pipeline_settings()
        assert settings.residency_allow == MAINLAND_RACKS
        assert settings.metrics_host == "0.0.0.0"
        assert not settings.demo_mode
        racks = [b["environment"]["KAFKA_BROKER_RACK"] for b in _brokers().values()]
        assert all(any(fnmatch.fnmatchcase(r, p) for p in settings.residency_allow) for r in racks)


def test_every_consentgate_variable_is_one_the_code_reads() -> None:
    known = {"CONSENTGATE_" + f.upper() for f in PipelineSettings.model_fields}
    known |= {"CONSENTGATE_" + f.upper() for f in KafkaSettings.model_fields}
    known.add("CONSENTGATE_TOPIC_PREFIX")  # read by ingest.kafka.topics from the environment
    used = {
        key
        for service in _services().values()
        for key in service.get("environment", {})
        if key.startswith("CONSENTGATE_")
    }
    assert len(used) > 5
    assert used <= known, sorted(used - known)


def test_interpolation_helper_follows_compose_rules() -> None:
    assert _interpolate("${A:-x}", {}) == "x"
    assert _interpolate("${A:-x}", {"A": "y"}) == "y"
    with pytest.raises(KeyError):
        _interpolate("${A:?needed}", {})


def test_image_is_built_from_python_311_slim_with_pip_install() -> None:
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in dockerfile.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.match(r"RUN pip install \"?\.(\[[\w,]+\])?\"?", ln) for ln in lines)
    assert any(ln.startswith("USER ") and "root" not in ln for ln in lines)
    for name in ("topics", "worker-1", "worker-2", "simulator"):
        build = _services()[name]["build"]
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == (
            COMPOSE_DIR / "Dockerfile"
        ).resolve()
