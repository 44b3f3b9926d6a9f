"""The project's root exception and the schema package's own errors."""

from __future__ import annotations


class ConsentgateError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: bool = False


class SchemaError(ConsentgateError):
    """A schema file is missing, malformed or inconsistent with its annotations."""


class EncodeError(ConsentgateError):
    """A record could not be encoded with its schema."""


class DecodeError(ConsentgateError):
    """Bytes could not be decoded: wrong marker, truncated, or unknown fingerprint."""
