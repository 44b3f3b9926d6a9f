"""pydantic v2 models of the Avro schemas, for the edges (SDK, JSON lines, CLI) only.

Each model matches its `.avsc` field for field; `drift()` proves it, and the
unit tests run it for every model. The hot path uses plain dicts instead:
`model.to_avro()` gives the dict the codec encodes.

The models live by record family: `event_models` (raw events), `consent_models`,
`output_models` (what the pipeline writes), on the building blocks of `model_types`;
the drift check is `model_drift`. This module is the entry point: it names the
models, lists them by schema, and validates JSON-lines input.
"""

from __future__ import annotations

from typing import Any

from schemas.consent_models import (
    AppliedConsentChange,
    ConsentChange,
    ConsentChangeKind,
    ConsentGrant,
    ConsentRecord,
    PolicyAcceptance,
)
from schemas.errors import ConsentgateError
from schemas.event_models import DeviceEvent, LogEvent
from schemas.model_drift import drift
from schemas.model_types import AvroModel
from schemas.output_models import (
    AnonymizedDeviceEvent,
    AnonymizedLogEvent,
    DeadLetter,
    DeadLetterHeader,
    ErasureRequest,
)


class UnknownEventTypeError(ConsentgateError, ValueError):
    """A JSON-lines input names an event type that has no model."""


MODELS: dict[str, type[AvroModel]] = {
    model.schema_name: model
    for model in (
        DeviceEvent,
        LogEvent,
        ConsentRecord,
        ConsentChange,
        AnonymizedDeviceEvent,
        AnonymizedLogEvent,
        DeadLetter,
        ErasureRequest,
    )
}
"""Schema name -> model class, one entry per `.avsc` schema."""

EVENT_MODELS: dict[str, type[AvroModel]] = {
    name: MODELS[name] for name in ("device_event", "log_event", "consent_record")
}
"""The event types a publisher may send as JSON lines."""


def validate_event(event_type: str, data: dict[str, Any]) -> AvroModel:
    """Validate one JSON-lines input; raises pydantic.ValidationError when it is invalid."""
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise UnknownEventTypeError(
            f"unknown event type {event_type!r}; expected one of {sorted(EVENT_MODELS)}"
        )
    return model.model_validate(data)


__all__ = [
    "EVENT_MODELS",
    "MODELS",
    "AnonymizedDeviceEvent",
    "AnonymizedLogEvent",
    "AppliedConsentChange",
    "AvroModel",
    "ConsentChange",
    "ConsentChangeKind",
    "ConsentGrant",
    "ConsentRecord",
    "DeadLetter",
    "DeadLetterHeader",
    "DeviceEvent",
    "ErasureRequest",
    "LogEvent",
    "PolicyAcceptance",
    "UnknownEventTypeError",
    "drift",
    "validate_event",
]
