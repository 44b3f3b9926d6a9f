"""The fleet simulator's catalogs (devices, places, networks, apps, names, texts), from data.

`catalog.toml` beside this module holds the values; `load_catalog` reads and checks
it once into plain frozen records, in the file's order, which the simulator draws
from by position.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.errors import validation_problems
from schemas.errors import ConsentgateError

CATALOG_FILE = Path(__file__).with_name("catalog.toml")


class CatalogError(ConsentgateError):
    """The catalog file cannot be read, or does not have the expected shape."""


_RECORD = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One phone model: brand, OS family, screen, and how popular it is (rank-ordered)."""

    __pydantic_config__ = _RECORD

    brand: str
    model: str
    os_name: str
    os_versions: tuple[str, ...]
    width_px: int
    height_px: int
    screen_in: float
    hardware_version: str


@dataclass(frozen=True, slots=True)
class CitySpec:
    """A mainland city centre, its relative population and its resident-id area code."""

    __pydantic_config__ = _RECORD

    name: str
    lat: float
    lon: float
    weight: float
    scatter_km: float
    area_code: str


class Firmware(NamedTuple):
    """A brand's firmware name (`{v}`: the OS version) and its build suffixes."""

    format: str
    builds: tuple[str, ...]


class Box(NamedTuple):
    """A latitude and longitude bounding box."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


class TimeZone(NamedTuple):
    """A time zone, its offset from UTC and its relative weight."""

    name: str
    offset_ms: int
    weight: float


class Publisher(NamedTuple):
    """One of the product's own apps: id, web domain, versions newest first, user share."""

    app_id: str
    domain: str
    versions: tuple[str, ...]
    weight: float


class InstalledApp(NamedTuple):
    """An app a phone may have installed, and its relative popularity."""

    package: str
    weight: float


class SystemEvent(NamedTuple):
    """A system log event: its name and message template."""

    name: str
    template: str


Names = tuple[str, ...]
Block = tuple[int, int, int]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Devices(_Section):
    models: tuple[ModelSpec, ...] = Field(min_length=1)
    plugins: Names
    default_browsers: Names = Field(min_length=1)
    default_ouis: Names = Field(min_length=1)
    firmware: dict[str, Firmware]
    browsers: dict[str, Names]
    ouis: dict[str, Names]
    preinstalled: dict[str, Names]

    @model_validator(mode="after")
    def _every_brand_has_firmware(self) -> _Devices:
        missing = sorted({m.brand for m in self.models} - set(self.firmware))
        if missing:
            raise ValueError(f"no firmware entry for brand {', '.join(missing)}")
        return self


class _Places(_Section):
    mainland_box: Box
    cities: tuple[CitySpec, ...] = Field(min_length=1)
    time_zones: tuple[TimeZone, ...] = Field(min_length=1)


class _Networks(_Section):
    broadband_v4: tuple[Block, ...] = Field(min_length=1)
    mobile_v4: tuple[Block, ...] = Field(min_length=1)
    v6_prefixes: Names = Field(min_length=1)
    router_ouis: Names = Field(min_length=1)
    ssid_patterns: Names = Field(min_length=1)
    public_ssids: Names = Field(min_length=1)


class _Apps(_Section):
    # The simulator splits users between two apps (the first gets its weight's share).
    publishers: tuple[Publisher, Publisher]
    installed: tuple[InstalledApp, ...] = Field(min_length=1)


class _People(_Section):
    surnames: Names = Field(min_length=1)
    given_names: Names = Field(min_length=1)
    mail_domains: Names = Field(min_length=1)
    phone_prefixes: Names = Field(min_length=1)


class _Texts(_Section):
    pages: Names = Field(min_length=1)
    pii_pages: Names = Field(min_length=1)
    crashes: Names = Field(min_length=1)
    pii_crashes: Names = Field(min_length=1)
    system_events: tuple[SystemEvent, ...] = Field(min_length=1)


class _CatalogFile(_Section):
    devices: _Devices
    places: _Places
    networks: _Networks
    apps: _Apps
    people: _People
    texts: _Texts


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything the simulator draws from, in the file's order."""

    models: tuple[ModelSpec, ...]
    plugins: Names
    default_browsers: Names
    default_ouis: Names
    firmware: Mapping[str, Firmware]
    browsers: Mapping[str, Names]
    ouis: Mapping[str, Names]
    preinstalled: Mapping[str, Names]
    mainland_box: Box
    cities: tuple[CitySpec, ...]
    time_zones: tuple[TimeZone, ...]
    broadband_v4: tuple[Block, ...]
    mobile_v4: tuple[Block, ...]
    v6_prefixes: Names
    router_ouis: Names
    ssid_patterns: Names
    public_ssids: Names
    publishers: tuple[Publisher, Publisher]
    installed: tuple[InstalledApp, ...]
    surnames: Names
    given_names: Names
    mail_domains: Names
    phone_prefixes: Names
    pages: Names
    pii_pages: Names
    crashes: Names
    pii_crashes: Names
    system_events: tuple[SystemEvent, ...]


def read_catalog(path: Path) -> Catalog:
    """Read and check one catalog file; a problem is a CatalogError naming the entry."""
    try:
        parsed = _CatalogFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(validation_problems(exc, root="catalog"))
        raise CatalogError(f"invalid catalog {path}: {problems}") from None
    return Catalog(**{name: value for _, section in parsed for name, value in section})


@cache
def load_catalog() -> Catalog:
    """The shipped catalog (`catalog.toml`), read once per process."""
    return read_catalog(CATALOG_FILE)
