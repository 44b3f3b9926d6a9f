"""A deterministic synthetic fleet: app users, their phones, homes, networks and identifiers.

Everything is drawn once from `random.Random(seed)`, so the same seed and
start time always give the same fleet. Users are static here; what changes
over time (sessions, battery, consent) lives in `ingest.simulator.simulate`.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate

from ingest.simulator.catalog import load_catalog
from schemas.errors import ConsentgateError

CATALOG = load_catalog()
_KM_PER_DEG_LAT = 111.32
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
MINOR_SHARE = 0.08
HOUR = 3_600_000
DAY = 24 * HOUR
_CELL = ("CELL_5G", "CELL_4G", "CELL_3G", "OFFLINE")
_CELL_CUM = (0.45, 0.95, 0.99, 1.0)
_SIGNAL = {"WIFI": (-55, -85, -30), "CELL_5G": (-92, -120, -70), "CELL_4G": (-95, -125, -65)}
UNREGISTERED_SHARE = 0.05


class FleetError(ConsentgateError):
    """The fleet was asked for something impossible (e.g. no users)."""


@dataclass(frozen=True, slots=True)
class Device:
    """One phone: attributes, identifiers and the habits that drive battery and storage."""

    brand: str
    model: str
    os_name: str
    os_version: str
    software_version: str
    hardware_version: str
    width_px: int
    height_px: int
    screen_in: float
    browser_type: str
    plugins: tuple[str, ...] | None
    imei: str
    mac_address: str
    android_id: str | None
    advertising_id: str
    serial_number: str
    home_ssid: str
    home_bssid: str
    installed_apps: tuple[str, ...]
    free_storage_mb: int
    storage_drain_mb_per_h: float
    unplug_hour: float
    plug_hour: float
    depletion: float
    curve: float


@dataclass(frozen=True, slots=True)
class User:
    """One app user: account, device, places, network and birth data."""

    user_id: str
    registered: bool
    app_id: str
    app_version: str
    domain: str
    device: Device
    city: str
    home_lat: float
    home_lon: float
    work_lat: float
    work_lon: float
    scatter_km: float
    home_ip: str
    mobile_block: tuple[int, int, int]
    ipv6_prefix: str | None
    time_zone: str
    tz_offset_ms: int
    name: str
    phone: str
    email: str
    id_card: str
    birth_date: date | None
    birth_year: int | None
    declared_minor: bool | None
    minor: bool
    activity: float


def luhn_check_digit(digits: str) -> str:
    """Check digit that makes `digits` + digit pass the Luhn test (as IMEIs do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def id_card_number(area_code: str, born: date, sequence: int) -> str:
    """An 18-character resident id (GB 11643) with a valid check character."""
    body = f"{area_code}{born:%Y%m%d}{sequence % 1000:03d}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def clamp_to_mainland(lat: float, lon: float) -> tuple[float, float]:
    """Keep a scattered coordinate inside mainland China's bounding box."""
    lat_min, lat_max, lon_min, lon_max = CATALOG.mainland_box
    return min(max(lat, lat_min), lat_max), min(max(lon, lon_min), lon_max)


def scatter(rng: random.Random, lat: float, lon: float, sigma_km: float) -> tuple[float, float]:
    """A point around (lat, lon) with gaussian scatter of `sigma_km` in each direction."""
    dlat = rng.gauss(0.0, sigma_km) / _KM_PER_DEG_LAT
    dlon = rng.gauss(0.0, sigma_km) / (_KM_PER_DEG_LAT * math.cos(math.radians(lat)))
    return clamp_to_mainland(round(lat + dlat, 6), round(lon + dlon, 6))


def ipv4(rng: random.Random, block: tuple[int, int, int]) -> str:
    """A host address inside a carrier block (first octet, second octet range)."""
    first, lo, hi = block
    return f"{first}.{rng.randint(lo, hi)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random, prefix: str) -> str:
    """A host address under a carrier's IPv6 allocation."""
    groups = [f"{rng.getrandbits(16):x}" for _ in range(7)]
    return f"{prefix}:" + ":".join(groups)


def mac_address(rng: random.Random, ouis: tuple[str, ...]) -> str:
    """A MAC address under one of the vendor prefixes `ouis`."""
    tail = ":".join(f"{rng.getrandbits(8):02X}" for _ in range(3))
    return f"{rng.choice(ouis)}:{tail}"


def _alnum(rng: random.Random, n: int) -> str:
    value = rng.getrandbits(6 * n)
    return "".join(_ALNUM[(value >> (6 * i)) % len(_ALNUM)] for i in range(n))


class Fleet:
    """`users` synthetic app users with their devices; attribute `users` holds them all."""

    def __init__(self, seed: int, users: int, start_ms: int) -> None:
        if users < 1:
            raise FleetError("a fleet needs at least one user")
        self.seed = seed
        self.start_ms = start_ms
        self._rng = random.Random(seed)
        self._start_date = datetime.fromtimestamp(start_ms / 1000, tz=UTC).date()
        self._model_cum = list(accumulate(1.0 / (r + 1) ** 1.1 for r in range(len(CATALOG.models))))
        self._city_cum = list(accumulate(c.weight for c in CATALOG.cities))
        self._app_names = [name for name, _ in CATALOG.installed]
        self._app_cum = list(accumulate(w for _, w in CATALOG.installed))
        self._tz_cum = list(accumulate(w for _, _, w in CATALOG.time_zones))
        unregistered = max(1, round(users * UNREGISTERED_SHARE)) if users > 1 else 0
        ids: dict[str, None] = {}
        built: list[User] = []
        for i in range(users):
            user_id = self._new_id(ids)
            built.append(self._user(user_id, registered=i >= unregistered))
        self._rng.shuffle(built)
        self.users: tuple[User, ...] = tuple(built)
        self.registered: tuple[User, ...] = tuple(u for u in built if u.registered)
        self.unregistered: tuple[User, ...] = tuple(u for u in built if not u.registered)

    def _new_id(self, taken: dict[str, None]) -> str:
        while True:
            user_id = str(self._rng.randint(1_000_000_000, 9_999_999_999))
            if user_id not in taken:
                taken[user_id] = None
                return user_id

    def _user(self, user_id: str, *, registered: bool) -> User:
        rng = self._rng
        city = rng.choices(CATALOG.cities, cum_weights=self._city_cum)[0]
        home_lat, home_lon = scatter(rng, city.lat, city.lon, city.scatter_km)
        work_lat, work_lon = scatter(rng, city.lat, city.lon, city.scatter_km * 0.6)
        app_idx = 0 if rng.random() < CATALOG.publishers[0].weight else 1
        app_id, domain, versions, _ = CATALOG.publishers[app_idx]
        app_version = versions[min(int(rng.expovariate(1.6)), len(versions) - 1)]
        tz_name, tz_offset, _ = rng.choices(CATALOG.time_zones, cum_weights=self._tz_cum)[0]
        surname, given = rng.choice(CATALOG.surnames), rng.choice(CATALOG.given_names)
        phone = rng.choice(CATALOG.phone_prefixes) + f"{rng.randint(0, 99_999_999):08d}"
        if rng.random() < 0.35:
            email = f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"
        else:
            email = f"{given}.{surname}{rng.randint(1, 99)}@{rng.choice(CATALOG.mail_domains)}"
        minor, born, birth_date, birth_year, declared_minor = self._birth()
        device = self._device(surname)
        return User(
            user_id=user_id,
            registered=registered,
            app_id=app_id,
            app_version=app_version,
            domain=domain,
            device=device,
            city=city.name,
            home_lat=home_lat,
            home_lon=home_lon,
            work_lat=work_lat,
            work_lon=work_lon,
            scatter_km=city.scatter_km,
            home_ip=ipv4(rng, rng.choice(CATALOG.broadband_v4)),
            mobile_block=rng.choice(CATALOG.mobile_v4),
            ipv6_prefix=rng.choice(CATALOG.v6_prefixes) if rng.random() < 0.2 else None,
            time_zone=tz_name,
            tz_offset_ms=tz_offset,
            name=f"{surname}{given}",
            phone=phone,
            email=email,
            id_card=id_card_number(city.area_code, born, rng.randint(0, 999)),
            birth_date=birth_date,
            birth_year=birth_year,
            declared_minor=declared_minor,
            minor=minor,
            activity=rng.lognormvariate(0.0, 0.9),
        )

    def _birth(self) -> tuple[bool, date, date | None, int | None, bool | None]:
        """Minor?, birth date, then what the account knows of it: date, year only, or nothing."""
        rng = self._rng
        minor = rng.random() < MINOR_SHARE
        age = rng.randint(10, 17) if minor else int(rng.triangular(18, 72, 27))
        born = self._start_date - timedelta(days=age * 365 + age // 4 + rng.randint(1, 364))
        known = rng.random()
        if known < 0.78:
            return minor, born, born, None, None
        if known < 0.95:
            return minor, born, None, born.year, None
        declared = (True if rng.random() < 0.6 else None) if minor else rng.choice((False, None))
        return minor, born, None, None, declared

    def _device(self, surname: str) -> Device:
        rng = self._rng
        index = rng.choices(range(len(CATALOG.models)), cum_weights=self._model_cum)[0]
        spec = CATALOG.models[index]
        apple = spec.brand == "Apple"
        os_version = rng.choice(spec.os_versions)
        firmware, builds = CATALOG.firmware[spec.brand]
        software = f"{firmware.format(v=os_version)} ({rng.choice(builds)})"
        tac = f"86{(index * 7919 + 104_729) % 1_000_000:06d}"
        body = tac + f"{rng.randint(0, 999_999):06d}"
        browsers = CATALOG.browsers.get(spec.brand, CATALOG.default_browsers)
        plugins = None if apple else tuple(p for p in CATALOG.plugins if rng.random() < 0.15)
        ad_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        x = f"{rng.getrandbits(16):04X}"
        ssid = rng.choice(CATALOG.ssid_patterns).format(x=x, surname=surname.capitalize())
        wanted = rng.randint(8, 60) - len(CATALOG.preinstalled.get(spec.brand, ()))
        apps: dict[str, None] = dict.fromkeys(CATALOG.preinstalled.get(spec.brand, ()))
        picked: dict[str, None] = {}
        while len(picked) < wanted:
            draws = rng.choices(self._app_names, cum_weights=self._app_cum, k=2 * wanted)
            picked.update(dict.fromkeys(draws))
        apps.update(dict.fromkeys(list(picked)[:wanted]))
        return Device(
            brand=spec.brand,
            model=spec.model,
            os_name=spec.os_name,
            os_version=os_version,
            software_version=software,
            hardware_version=spec.hardware_version,
            width_px=spec.width_px,
            height_px=spec.height_px,
            screen_in=spec.screen_in,
            browser_type=rng.choice(browsers),
            plugins=plugins,
            imei=body + luhn_check_digit(body),
            mac_address=mac_address(rng, CATALOG.ouis.get(spec.brand, CATALOG.default_ouis)),
            android_id=None if apple else f"{rng.getrandbits(64):016x}",
            advertising_id=ad_id.upper() if apple else ad_id,
            serial_number=_alnum(rng, 10 if apple else 16),
            home_ssid=ssid,
            home_bssid=mac_address(rng, CATALOG.router_ouis).lower(),
            installed_apps=tuple(apps),
            free_storage_mb=int(rng.choice((64, 128, 256, 512)) * 1024 * rng.uniform(0.08, 0.6)),
            storage_drain_mb_per_h=rng.uniform(1.0, 20.0),
            unplug_hour=rng.uniform(6.0, 8.5),
            plug_hour=rng.uniform(22.0, 24.9),
            depletion=rng.uniform(0.55, 0.92),
            curve=rng.uniform(1.15, 1.6),
        )


@dataclass(slots=True)
class Session:
    """One app session: where the phone is, its network, and whether the app is in front."""

    session_id: str
    start: int
    end: int
    network: str
    ip: str
    ssid: str | None
    bssid: str | None
    lat: float
    lon: float
    source: str
    bluetooth: bool
    signal: int
    foreground: bool


def bisect(cum: tuple[float, ...], x: float) -> int:
    """Index of the first cumulative weight above `x`."""
    for i, edge in enumerate(cum):
        if x < edge:
            return i
    return len(cum) - 1


def open_session(rng: random.Random, user: User, start: int) -> Session:
    """A new session at `start`: place and network depend on the user's local hour."""
    local_hour = (start + user.tz_offset_ms) % DAY // HOUR
    evening = local_hour >= 19 or local_hour < 8
    roll = rng.random()
    place = "home" if roll < (0.75 if evening else 0.3) else "work" if roll < 0.6 else "out"
    ssid = bssid = None
    device = user.device
    if place == "home" and rng.random() < 0.92:
        network, ip, ssid, bssid = "WIFI", user.home_ip, device.home_ssid, device.home_bssid
    elif place == "work" and rng.random() < 0.5:
        network, ip = "WIFI", ipv4(rng, rng.choice(CATALOG.broadband_v4))
        ssid = rng.choice(CATALOG.public_ssids)
        bssid = mac_address(rng, CATALOG.router_ouis).lower()
    else:
        network = _CELL[bisect(_CELL_CUM, rng.random())]
        v6 = user.ipv6_prefix if rng.random() < 0.7 else None
        ip = ipv6(rng, v6) if v6 else ipv4(rng, user.mobile_block)
    if place == "home":
        lat, lon = user.home_lat, user.home_lon
    elif place == "work":
        lat, lon = user.work_lat, user.work_lon
    else:
        lat, lon = scatter(rng, user.home_lat, user.home_lon, user.scatter_km)
    mean, low, high = _SIGNAL.get(network, (-90, -115, -70))
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    end = start + int(rng.lognormvariate(12.4, 0.8))
    signal = min(max(int(rng.gauss(mean, 9)), low), high)
    bluetooth = rng.random() < 0.55
    source = "WIFI" if ssid else "GPS"
    return Session(
        session_id, start, end, network, ip, ssid, bssid, lat, lon, source, bluetooth, signal, True
    )


def battery(
    device: Device, local_ms: int, in_session_ms: int, *, foreground: bool
) -> tuple[int, bool]:
    """Battery percent and charging flag: discharging along a curve by day, charging overnight."""
    since_unplug = (local_ms % DAY / HOUR - device.unplug_hour) % 24
    day_len = device.plug_hour - device.unplug_hour
    if since_unplug < day_len:
        level = 100 * (1 - device.depletion * (since_unplug / day_len) ** device.curve)
        if foreground:
            level -= in_session_ms / 240_000  # screen on: a quarter percent a minute
        charging = False
    else:
        level = 100 * (1 - device.depletion) + 40 * (since_unplug - day_len)
        charging = level < 100
    return min(max(int(level), 1), 100), charging
