"""The Kubernetes manifests match the real Kubernetes schemas, probe the right paths with
safe timings, and match the settings the code reads."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # ships no py.typed
import pytest
import yaml

from consumers.health import STALL_AFTER_S
from consumers.settings import PLACEHOLDER_SECRETS, PipelineSettings, load_pipeline_settings
from ingest.kafka.config import KafkaSettings, load_settings

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
NAMESPACE = "consentgate"
# The Kubernetes release whose schemas (bundled by kubernetes-validate, offline) the
# manifests must match; raise it with the oldest cluster version supported.
K8S_VERSION = "1.33.0"
# Read directly from the environment, not through a settings class.
OTHER_ENV = frozenset({"CONSENTGATE_TOPIC_PREFIX"})


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _manifests() -> dict[str, dict[str, Any]]:
    """kind -> the one manifest of that kind (kustomization excluded)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yml")):
        if path.name == "kustomization.yml":
            continue
        for doc in _docs(path):
            assert doc["kind"] not in found, doc["kind"]
            found[doc["kind"]] = doc
    return found


def _container(kind: str) -> dict[str, Any]:
    (container,) = _manifests()[kind]["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _schema_errors(path: Path) -> list[str]:
    """Violations of the Kubernetes schemas by each document of a manifest file.

    Strict: a field the schema does not declare (a typo, a misplaced key) is an error,
    and so is a kind the schemas do not know.
    """
    errors = []
    for doc in _docs(path):
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{path.name}: {doc.get('kind')} {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{path.name}: {exc.message}")
    return errors


def _window_s(probe: dict[str, Any]) -> int:
    """Seconds of consecutive failures before the kubelet acts (Kubernetes defaults)."""
    return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))


def _known_env() -> set[str]:
    names = {"CONSENTGATE_" + f.upper() for f in PipelineSettings.model_fields}
    names |= {"CONSENTGATE_" + f.upper() for f in KafkaSettings.model_fields}
    return names | OTHER_ENV


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yml")), ids=lambda p: p.name)
def test_every_manifest_parses_and_names_its_kind(path: Path) -> None:
    docs = _docs(path)
    assert docs
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"], path.name
        if doc["kind"] not in {"Namespace", "Kustomization"}:
            assert doc["metadata"]["name"], path.name
            assert doc["metadata"]["namespace"] == NAMESPACE, path.name


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(K8S.glob("*.yml")) if p.name != "kustomization.yml"],
    ids=lambda p: p.name,
)
def test_every_manifest_matches_the_kubernetes_schema_strictly(path: Path) -> None:
    assert _schema_errors(path) == []


def test_schema_check_rejects_an_unknown_field(tmp_path: Path) -> None:
    text = (K8S / "deployment.yml").read_text(encoding="utf-8")
    assert "          readinessProbe:\n" in text
    broken = tmp_path / "deployment.yml"
    broken.write_text(
        text.replace("          readinessProbe:\n", "          readinesProbe:\n"), encoding="utf-8"
    )
    (error,) = _schema_errors(broken)
    assert "readinesProbe" in error


def test_schema_check_rejects_a_value_of_the_wrong_type(tmp_path: Path) -> None:
    doc = yaml.safe_load((K8S / "pdb.yml").read_text(encoding="utf-8"))
    doc["spec"]["maxUnavailable"] = [1]
    broken = tmp_path / "pdb.yml"
    broken.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (error,) = _schema_errors(broken)
    assert "maxUnavailable" in error


def test_schema_check_rejects_a_kind_it_has_no_schema_for(tmp_path: Path) -> None:
    text = (K8S / "pdb.yml").read_text(encoding="utf-8")
    assert "\nkind: PodDisruptionBudget\n" in text
    broken = tmp_path / "pdb.yml"
    broken.write_text(
        text.replace("\nkind: PodDisruptionBudget\n", "\nkind: DisruptionBudget\n"),
        encoding="utf-8",
    )
    (error,) = _schema_errors(broken)
    assert "DisruptionBudget" in error


def test_kustomization_is_a_kustomization_whose_resources_exist() -> None:
    (kustomization,) = _docs(K8S / "kustomization.yml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["resources"]
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name


def test_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = _docs(K8S / "kustomization.yml")
    expected = {
        p.name
        for p in K8S.glob("*.yml")
        if p.name not in {"kustomization.yml", "secret.template.yml"}
    }
    assert set(kustomization["resources"]) == expected


def test_worker_probes_readyz_and_healthz_on_the_metrics_port() -> None:
    container = _container("Deployment")
    (port,) = container["ports"]
    assert port == {"name": "metrics", "containerPort": 9400, "protocol": "TCP"}
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness == {"path": "/readyz", "port": "metrics"}
    assert liveness == {"path": "/healthz", "port": "metrics"}


def test_liveness_tolerates_a_batch_slower_than_the_stall_window() -> None:
    liveness = _container("Deployment")["livenessProbe"]
    # The kubelet restarts after failureThreshold failures one period apart, so the
    # first failure plus (threshold - 1) periods must outlast the in-process stall
    # window that /healthz already waits before turning 503.
    patience = (liveness["failureThreshold"] - 1) * liveness["periodSeconds"]
    assert patience > STALL_AFTER_S
    assert _window_s(liveness) > STALL_AFTER_S
    assert liveness["timeoutSeconds"] < liveness["periodSeconds"]


def test_readiness_drops_quickly_and_before_liveness_acts() -> None:
    container = _container("Deployment")
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert readiness["periodSeconds"] <= 10
    assert _window_s(readiness) <= 30
    assert _window_s(readiness) < _window_s(container["livenessProbe"])
    assert readiness["timeoutSeconds"] < readiness["periodSeconds"]


def test_startup_probe_waits_for_the_endpoint_not_for_readiness() -> None:
    startup = _container("Deployment")["startupProbe"]
    # /readyz would never pass on a worker left without partitions, and the kubelet
    # would restart it for ever; /healthz answers as soon as the endpoint is up.
    assert startup["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert _window_s(startup) >= 60
    assert startup["timeoutSeconds"] < startup["periodSeconds"]


def test_service_and_disruption_budget_select_the_worker_pods() -> None:
    manifests = _manifests()
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    deployment_selector = manifests["Deployment"]["spec"]["selector"]["matchLabels"]
    service = manifests["Service"]["spec"]
    budget = manifests["PodDisruptionBudget"]["spec"]
    for selector in (deployment_selector, service["selector"], budget["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()
    (port,) = service["ports"]
    assert port["targetPort"] == "metrics"
    assert port["port"] == 9400
    assert budget["maxUnavailable"] < manifests["Deployment"]["spec"]["replicas"]


def test_topic_job_creates_topics_with_replication_3() -> None:
    job = _manifests()["Job"]
    assert _container("Job")["command"] == [
        "consentgate",
        "topics",
        "create",
        "--replication",
        "3",
    ]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}


def test_secret_template_holds_only_placeholders_the_worker_refuses() -> None:
    secret = _manifests()["Secret"]
    assert secret["stringData"]
    for value in secret["stringData"].values():
        assert value == "PLACEHOLDER"
        assert value.lower() in PLACEHOLDER_SECRETS
    text = (K8S / "secret.template.yml").read_text(encoding="utf-8")
    assert "TEMPLATE ONLY" in text


def test_every_secret_reference_names_a_key_of_the_template() -> None:
    keys = set(_manifests()["Secret"]["stringData"])
    name = _manifests()["Secret"]["metadata"]["name"]
    for kind in ("Deployment", "Job"):
        for env in _container(kind).get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == name, kind
                assert ref["key"] in keys, (kind, ref["key"])


def test_every_setting_in_the_manifests_is_one_the_code_reads() -> None:
    known = _known_env()
    names = set(_manifests()["ConfigMap"]["data"])
    for kind in ("Deployment", "Job"):
        names |= {e["name"] for e in _container(kind).get("env", []) if e["name"] != "POD_NAME"}
    assert names
    assert names <= known, sorted(names - known)


def test_configmap_values_are_accepted_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _manifests()["ConfigMap"]["data"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONSENTGATE_KANON_PERSON_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("CONSENTGATE_SASL_PASSWORD", "not-a-real-password")
    pipeline = load_pipeline_settings()
    kafka = load_settings()
    assert pipeline.residency_allow == ("cn-north-*", "cn-east-*")
    assert pipeline.metrics_port == 9400
    assert kafka.security_protocol == "SASL_SSL"
    assert kafka.sasl_username == "pipeline"
