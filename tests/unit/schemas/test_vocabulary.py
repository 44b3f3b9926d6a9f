"""Every field of every schema is tagged, and every category is in the consent vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import SchemaError
from schemas.fields import consent_vocabulary, field_tags, load_vocabulary
from schemas.registry import default_registry

SENSITIVITIES = {"technical", "personal", "sensitive"}


def leaf_fields(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of `schema` and of the records nested in it, with a dotted path."""
    if isinstance(schema, list):
        for branch in schema:
            yield from leaf_fields(branch, path)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            for field in schema["fields"]:
                yield f"{path}.{field['name']}", field
                yield from leaf_fields(field["type"], f"{path}.{field['name']}")
        else:
            for key in ("type", "items", "values"):
                if key in schema:
                    yield from leaf_fields(schema[key], path)


ALL_FIELDS = [
    (path, field)
    for name in default_registry().names()
    for schema in default_registry().versions(name)
    for path, field in leaf_fields(schema.raw, schema.label)
]


def test_nested_record_fields_are_walked() -> None:
    paths = {path for path, _ in ALL_FIELDS}
    assert "consent_record.v1.purposes.granted" in paths
    assert "consent_record.v1.policy_acceptances.accepted_at" in paths


@pytest.mark.parametrize(("path", "field"), ALL_FIELDS, ids=[p for p, _ in ALL_FIELDS])
def test_field_has_a_valid_sensitivity_and_known_category(path: str, field: dict[str, Any]) -> None:
    assert field.get("sensitivity") in SENSITIVITIES
    if field["sensitivity"] == "sensitive":
        assert field.get("category") in consent_vocabulary().categories
    if "category" in field:
        assert field["category"] in consent_vocabulary().categories


def test_vocabulary_has_the_policy_purposes_and_categories() -> None:
    vocabulary = consent_vocabulary()
    assert "analytics" in vocabulary.purposes
    assert {"device_identifiers", "precise_location", "installed_apps"} <= set(
        vocabulary.categories
    )
    assert all(description.strip() for description in vocabulary.purposes.values())


def test_field_tags_agree_with_the_vocabulary() -> None:
    tags = field_tags("device_event")
    assert tags["wifi_bssid"].category == "precise_location"
    assert tags["imei"].identifier


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[purposes]\nmarketing = "m"\n[categories]\nx = "y"\n', "analytics"),
        ('[purposes]\nanalytics = "a"\n', "categories"),
        ('[purposes]\nanalytics = ""\n[categories]\nx = "y"\n', "description"),
        ('[purposes]\nAnalytics = "a"\n[categories]\nx = "y"\n', "snake_case"),
        ('[purposes]\nanalytics = "a"\n[categories]\nanalytics = "y"\n', "both"),
        ('[purposes]\nanalytics = "a"\n[categories]\nx = "y"\n[extra]\n', "unknown sections"),
        ("[purposes\n", "cannot read"),
    ],
)
def test_invalid_vocabulary_is_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "vocabulary.toml"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message):
        load_vocabulary(path)
