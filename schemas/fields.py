"""Per-field sensitivity tags read from the custom attributes of the Avro schemas.

The `.avsc` files are the single source of truth: every field declares
`sensitivity` (technical, personal, sensitive), sensitive fields a consent
`category`, and optionally `identifier`, `free_text` and `quasi_identifier`.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType

from schemas.errors import SchemaError

AVRO_DIR = Path(__file__).parent / "avro"
VOCABULARY_PATH = Path(__file__).parent / "consent_vocabulary.toml"
REQUIRED_PURPOSES = frozenset({"analytics"})
_TERM = re.compile(r"^[a-z][a-z0-9_]*$")


class Sensitivity(StrEnum):
    """How much harm a field can do on its own."""

    TECHNICAL = "technical"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"


@dataclass(frozen=True, slots=True)
class FieldTag:
    """What the schema says about one top-level field."""

    name: str
    sensitivity: Sensitivity
    category: str | None
    identifier: bool
    free_text: bool
    quasi_identifier: bool


def schema_path(name: str, version: int = 1) -> Path:
    """Path of the `.avsc` file of schema `name` (e.g. "device_event") at `version`."""
    return AVRO_DIR / f"{name}.v{version}.avsc"


@cache
def field_tags(name: str, version: int = 1) -> dict[str, FieldTag]:
    """Tags of every top-level field of schema `name`, keyed by field name."""
    path = schema_path(name, version)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema {path.name}: {exc}") from exc
    tags: dict[str, FieldTag] = {}
    for field in schema["fields"]:
        try:
            sensitivity = Sensitivity(field["sensitivity"])
        except (KeyError, ValueError) as exc:
            raise SchemaError(
                f"{path.name}: field {field.get('name')!r} lacks a valid sensitivity"
            ) from exc
        category = field.get("category")
        if sensitivity is Sensitivity.SENSITIVE and not category:
            raise SchemaError(f"{path.name}: sensitive field {field['name']!r} has no category")
        tags[field["name"]] = FieldTag(
            name=field["name"],
            sensitivity=sensitivity,
            category=category,
            identifier=bool(field.get("identifier", False)),
            free_text=bool(field.get("free_text", False)),
            quasi_identifier=bool(field.get("quasi_identifier", False)),
        )
    return tags


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Consent purposes and sensitive data categories, each name mapped to its description."""

    purposes: Mapping[str, str]
    categories: Mapping[str, str]


def _terms(document: dict[str, object], section: str, source: str) -> Mapping[str, str]:
    """Validate one `[section]` table of name = "one-line description" entries."""
    table = document.get(section)
    if not isinstance(table, dict) or not table:
        raise SchemaError(f"{source}: [{section}] must be a non-empty table")
    for name, description in table.items():
        if not _TERM.match(name):
            raise SchemaError(f"{source}: {section} name {name!r} must be snake_case")
        if not isinstance(description, str) or not description.strip() or "\n" in description:
            raise SchemaError(f"{source}: {section}.{name} needs a one-line description")
    return MappingProxyType(dict(table))


def load_vocabulary(path: Path) -> Vocabulary:
    """Read and validate a consent vocabulary TOML file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SchemaError(f"cannot read consent vocabulary {path.name}: {exc}") from exc
    unknown = set(document) - {"purposes", "categories"}
    if unknown:
        raise SchemaError(f"{path.name}: unknown sections {sorted(unknown)}")
    purposes = _terms(document, "purposes", path.name)
    categories = _terms(document, "categories", path.name)
    missing = REQUIRED_PURPOSES - set(purposes)
    if missing:
        raise SchemaError(f"{path.name}: required purposes missing: {sorted(missing)}")
    overlap = set(purposes) & set(categories)
    if overlap:
        raise SchemaError(f"{path.name}: names both purpose and category: {sorted(overlap)}")
    return Vocabulary(purposes=purposes, categories=categories)


@cache
def consent_vocabulary() -> Vocabulary:
    """The shipped consent vocabulary (`schemas/consent_vocabulary.toml`), validated once."""
    return load_vocabulary(VOCABULARY_PATH)
