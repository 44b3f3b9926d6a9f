"""The one place that provides a real Kafka broker to the integration tests.

Order: KAFKA_BOOTSTRAP_SERVERS if set; else testcontainers' Kafka module when a
Docker engine answers; else the project's own local KRaft broker started from
the official jars. A broker that cannot be had fails the run; it is never
skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ingest.kafka import Transport, make_transport
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.topics import TopicSet
from tests.integration.topic_sets import fresh_topic_set
from tests.integration.transport_helpers import new_topics

# No wall-clock limits in tests: Hypothesis's default 200 ms deadline per example failed
# a property test on a busy machine. Speed is measured by benchmarks/.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    if os.environ.get("CONSENTGATE_TEST_DOCKER", "1") == "1" and _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from ingest.local_broker.broker import LocalBroker

    run_dir = tmp_path_factory.mktemp("kafka")
    broker = LocalBroker(run_dir=Path(run_dir))
    try:
        bootstrap = broker.start()
    except Exception as exc:  # the run must fail loudly, never skip
        pytest.fail(f"no Kafka broker for the integration tests: {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings for the session broker with the default client."""
    return load_settings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture(scope="session")
def transport(kafka_settings: KafkaSettings) -> Transport:
    """The default transport for the session broker."""
    return make_transport(kafka_settings)


@pytest.fixture
def topic_set(transport: Transport) -> Iterator[TopicSet]:
    """A fresh, uuid-prefixed set of every pipeline topic, created for one test."""
    with fresh_topic_set(transport) as topics:
        yield topics


@pytest.fixture
def group_id() -> str:
    """A fresh consumer group id for one test."""
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["kafka-python", "confluent"])
def client(request: pytest.FixtureRequest) -> str:
    """Each Kafka client library in turn: a test using it runs once per client."""
    name: str = request.param
    return name


@pytest.fixture
def client_transport(kafka_settings: KafkaSettings, client: str) -> Transport:
    """The transport of the parametrized `client` for the session broker."""
    return make_transport(kafka_settings.model_copy(update={"client": client}))


@pytest.fixture
def topic(client_transport: Transport) -> Iterator[str]:
    """One fresh 3-partition topic, created and deleted through the transport under test."""
    (name,) = new_topics(client_transport)
    yield name
    admin = client_transport.admin()
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: fault tests, then the other integration tests, then unit tests.

    `make test` spreads test files over processes (pytest-xdist, `--dist loadfile`) in
    collection order; starting the long files first keeps one process from finishing
    alone with a long file at the end. The sort is stable: within a tier, files and tests
    keep their order, and a file's tests stay together (module fixtures are built once).
    """

    def tier(item: pytest.Item) -> int:
        if item.get_closest_marker("fault"):
            return 0
        return 1 if item.get_closest_marker("integration") else 2

    file_tier: dict[str, int] = {}
    for item in items:
        path = str(item.path)
        file_tier[path] = min(file_tier.get(path, 2), tier(item))
    items.sort(key=lambda item: file_tier[str(item.path)])
