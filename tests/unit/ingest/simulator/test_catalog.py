"""The simulator's catalog file: loaded in its order, checked, every placeholder fillable."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from ingest.simulator.catalog import (
    CATALOG_FILE,
    CatalogError,
    CitySpec,
    ModelSpec,
    Publisher,
    read_catalog,
)
from ingest.simulator.simulate import _FILLERS


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_the_shipped_catalog_loads_in_file_order() -> None:
    catalog = read_catalog(CATALOG_FILE)
    assert catalog.models[0] == ModelSpec(
        "Apple", "iPhone 15", "iOS", ("17.4.1", "17.5.1", "17.6.1"), 1179, 2556, 6.1, "A3092"
    )
    assert catalog.models[-1].model == "Xiaomi 13" and len(catalog.models) == 32
    assert catalog.cities[0] == CitySpec("Chongqing", 29.563, 106.5516, 32.1, 8.0, "500103")
    assert [c.name for c in catalog.cities[-2:]] == ["Xining", "Lhasa"]
    assert catalog.publishers[0] == Publisher(
        "com.sossen.energy", "m.sossen.com", ("3.8.2", "3.8.1", "3.7.0", "3.5.4"), 0.82
    )
    assert [(t.name, t.offset_ms) for t in catalog.time_zones[:2]] == [
        ("Asia/Shanghai", 8 * 3_600_000),
        ("Asia/Urumqi", 6 * 3_600_000),
    ]
    assert catalog.installed[0] == ("com.tencent.mm", 100)
    assert catalog.broadband_v4[0] == (58, 32, 63)
    assert catalog.firmware["Apple"] == ("iOS {v}", ("21F90", "21G93", "21E236", "20H343"))
    assert catalog.system_events[0].name == "network_change"
    assert tuple(catalog.mainland_box) == (18.0, 53.6, 73.5, 135.1)


def test_every_text_placeholder_is_one_the_simulator_fills() -> None:
    catalog = read_catalog(CATALOG_FILE)
    texts = [*catalog.pages, *catalog.pii_pages, *catalog.crashes, *catalog.pii_crashes]
    texts += [event.template for event in catalog.system_events]
    used = set().union(*(_placeholders(t) for t in texts))
    assert {"phone", "email", "imei", "id_card", "lat", "lon"} <= used
    assert used <= set(_FILLERS)
    assert set().union(*(_placeholders(p) for p in catalog.ssid_patterns)) == {"x", "surname"}
    assert all(_placeholders(f.format) == {"v"} for f in catalog.firmware.values())


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = CATALOG_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "catalog.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("[people]\n", "[people]\nnicknames = []\n", "people.nicknames"),
        ('"Asia/Urumqi", offset_ms = 21_600_000', '"Asia/Urumqi", offset = 21_600_000', "offset"),
        ("width_px = 1179", 'width_px = "wide"', "devices.models.0.width_px"),
        ("surnames = [", "surnames_ = [", "people.surnames"),
        ('  { app_id = "com.sossen.microplatform"', '  # { app_id = "x"', "publishers"),
        ('Meizu = { format = "Flyme 10.5 Android {v}"', "# Meizu = {", "Meizu"),
        ("public_ssids = [", "public_ssids = [] # [", "public_ssids"),
    ],
)
def test_a_wrong_entry_is_refused_naming_where(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    with pytest.raises(CatalogError, match="invalid catalog") as caught:
        read_catalog(_edited(tmp_path, old, new))
    assert named in str(caught.value)


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        read_catalog(_edited(tmp_path, "[texts]", "[texts"))
    with pytest.raises(CatalogError, match="cannot read catalog"):
        read_catalog(tmp_path / "missing.toml")
