"""Both transports, and the tests' in-memory one, define every boundary method with the
protocol's signature (no broker).

The run-time complement of the `TYPE_CHECKING` block in `ingest/kafka/__init__.py`:
mypy accepts a method whose parameters are renamed, which breaks keyword callers.
"""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("confluent_kafka", reason="the librdkafka extra is not installed")

from ingest.kafka import base, make_transport
from ingest.kafka.config import load_settings
from ingest.kafka.confluent import ConfluentTransport
from ingest.kafka.confluent_admin import ConfluentAdmin
from ingest.kafka.confluent_consumer import ConfluentConsumer
from ingest.kafka.confluent_producer import ConfluentProducer
from ingest.kafka.confluent_producer import _Delivery as ConfluentDelivery
from ingest.kafka.kafka_python import (
    KafkaPythonConsumer,
    KafkaPythonProducer,
    KafkaPythonTransport,
)
from ingest.kafka.kafka_python import _Delivery as KafkaPythonDelivery
from ingest.kafka.kafka_python_admin import KafkaPythonAdmin
from tests.memory_transport import (
    MemoryAdmin,
    MemoryConsumer,
    MemoryDelivery,
    MemoryProducer,
    MemoryTransport,
)

IMPLEMENTATIONS: dict[type, tuple[type, type]] = {
    base.Transport: (KafkaPythonTransport, ConfluentTransport),
    base.Producer: (KafkaPythonProducer, ConfluentProducer),
    base.Delivery: (KafkaPythonDelivery, ConfluentDelivery),
    base.Consumer: (KafkaPythonConsumer, ConfluentConsumer),
    base.Admin: (KafkaPythonAdmin, ConfluentAdmin),
}
IN_MEMORY: dict[type, type] = {
    base.Transport: MemoryTransport,
    base.Producer: MemoryProducer,
    base.Delivery: MemoryDelivery,
    base.Consumer: MemoryConsumer,
    base.Admin: MemoryAdmin,
}
CASES = [(proto, impl) for proto, impls in IMPLEMENTATIONS.items() for impl in impls]
CASES += list(IN_MEMORY.items())


def _methods(protocol: type) -> list[str]:
    return [
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]


def _shape(function: object) -> list[tuple[str, object, object]]:
    """Name, kind and default of each parameter: what a caller relies on."""
    parameters = inspect.signature(function).parameters.values()  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in parameters]


def test_every_protocol_of_the_boundary_is_checked() -> None:
    protocols = {
        value
        for value in vars(base).values()
        if isinstance(value, type)
        and value.__module__ == base.__name__
        and getattr(value, "_is_protocol", False)
    }
    assert protocols == set(IMPLEMENTATIONS) == set(IN_MEMORY)


@pytest.mark.parametrize(("protocol", "implementation"), CASES, ids=lambda c: c.__qualname__)
def test_implementation_defines_each_protocol_method_with_the_same_parameters(
    protocol: type, implementation: type
) -> None:
    methods = _methods(protocol)
    assert methods, f"{protocol.__name__} declares no methods"
    missing = [name for name in methods if not callable(getattr(implementation, name, None))]
    assert missing == [], f"{implementation.__qualname__} lacks {missing}"
    for name in methods:
        assert _shape(getattr(implementation, name)) == _shape(getattr(protocol, name)), name


@pytest.mark.parametrize("transport_class", IMPLEMENTATIONS[base.Transport])
def test_make_transport_builds_each_client_with_the_protocol_attributes(
    transport_class: type[KafkaPythonTransport | ConfluentTransport],
) -> None:
    settings = load_settings(bootstrap_servers="127.0.0.1:1")
    name = transport_class.name
    transport = make_transport(settings.model_copy(update={"client": name}))  # no network call
    assert type(transport) is transport_class
    assert (transport.name, transport.bootstrap_servers) == (name, "127.0.0.1:1")
