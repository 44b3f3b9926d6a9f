"""Errors of the publishing side: configuration, the Kafka boundary, the local broker, the CLI."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.errors import ConsentgateError


class ConfigError(ConsentgateError):
    """Configuration is missing, unknown or contradictory."""


class TransportError(ConsentgateError):
    """A Kafka operation failed at the transport boundary."""

    retriable = True


class DeliveryError(TransportError):
    """One or more records were not acknowledged by the broker."""

    retriable = False

    def __init__(self, message: str, failed: int = 1) -> None:
        super().__init__(message)
        self.failed = failed


class BrokerError(ConsentgateError):
    """The local development broker could not be prepared, started or stopped."""


class UsageError(ConsentgateError):
    """A command-line mistake: reported as one readable line, exit status 2."""


class PublishError(ConsentgateError):
    """An event could not be published: invalid, unencodable, or of an unknown type."""


def validation_problems(exc: ValidationError, root: str = "record") -> list[str]:
    """`field: reason` for each problem of a pydantic error, never the offending value."""
    return [f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()]
