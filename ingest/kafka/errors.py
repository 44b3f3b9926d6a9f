"""Transport error classes and the mapping from client-library errors to them."""

from __future__ import annotations

from ingest.errors import AuthenticationError, TransportError


class FencedError(TransportError):
    """Another instance with the same transactional id took over (or the producer failed
    fatally): stop this one."""

    retriable = False


class TransactionError(TransportError):
    """A transaction could not complete; abort it and reprocess the batch."""


class AuthorizationError(TransportError):
    """The principal lacks an ACL for the operation."""

    retriable = False


class UnreachableError(TransportError):
    """The cluster did not answer in time."""


def map_error(exc: BaseException, what: str) -> TransportError:
    """Wrap a client library's error as the project's error class, by error name."""
    name = type(exc).__name__
    message = f"{what}: {name}"
    if "Fenced" in name or "InvalidProducerEpoch" in name:
        return FencedError(message)
    if "Authentication" in name:  # e.g. SaslAuthenticationFailedError: wrong credentials
        return AuthenticationError(message)
    if "Authorization" in name:
        return AuthorizationError(message)
    if "Timeout" in name or "NoBrokersAvailable" in name:
        return UnreachableError(message)
    if "Transaction" in name or "InvalidTxnState" in name:
        return TransactionError(message)
    return TransportError(message)
