"""Errors of the publishing side: configuration, the Kafka boundary, the local broker, the CLI.

`ingest.cli.main` turns them into exit statuses in one place: `UsageError` and
`ConfigError` are the user's mistakes (2), everything else is a failure (1).
"""

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


class AuthenticationError(TransportError):
    """The cluster refused this client's credentials (SASL): retrying cannot help."""

    retriable = False


class BrokerError(ConsentgateError):
    """The local development broker could not be prepared, started or stopped."""


class UsageError(ConsentgateError):
    """A command-line mistake: reported as one readable line, exit status 2."""


class CommandError(ConsentgateError):
    """A command could not finish for a reason that is not the user's mistake (exit 1)."""


class PublishError(ConsentgateError):
    """An event could not be published: invalid, unencodable, or of an unknown type."""


class MetricsTextError(ConsentgateError):
    """A scrape of /metrics is not Prometheus text format."""


def validation_problems(exc: ValidationError, root: str = "record") -> list[str]:
    """`field: reason` for each problem of a pydantic error, never the offending value."""
    return [f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()]
