"""The fleet's event stream: consent timelines interleaved with device and log events.

`Simulation(fleet).items(count=...)` yields `Item`s in publish order. Devices
upload in batches: a batch's events were collected over the seconds to
minutes before its nominal send time. A user's consent record is yielded
before that user's first batch, and consent changes (withdrawals, re-grants,
policy upgrades, guardian changes, cancellations) land inside a batch's
collection window, so some events are collected just before and just after
them. About `unknown_share` of batches come from users with no consent record.
Determinism: one `random.Random` per run, seeded from the fleet seed; the
same fleet, arguments and rate always give the same items, and a shorter
`count` gives a prefix of a longer one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from ingest.simulator.catalog import load_catalog
from ingest.simulator.consent_timeline import (
    CURRENT_POLICY_VERSION,
    SimulationError,
    apply_change,
    copy_consent,
    history,
    pick_change,
    signup,
)
from ingest.simulator.fleet import HOUR, Fleet, Session, User, battery, bisect, open_session
from schemas.fields import field_tags

CATALOG = load_catalog()
_FG_LOGS = ("PAGE_VIEW", "USAGE", "SYSTEM", "CRASH", "APP_OPEN")
_FG_CUM = (0.55, 0.82, 0.94, 0.97, 1.0)


class Item(NamedTuple):
    """One record to publish: schema name, record, nominal send time in ms after `start_ms`."""

    event_type: str
    record: dict[str, Any]
    send_offset_ms: int


@dataclass(slots=True)
class _UserState:
    """What one user's phone and account look like right now during a run."""

    consent: dict[str, Any] | None
    published: bool = False
    cancelled: bool = False
    last_event: int = -(2**62)
    session: Session | None = None


def _bases(user: User) -> tuple[dict[str, Any], dict[str, Any]]:
    """Device- and log-event dicts with every schema field, filled with what never changes."""
    d = user.device
    apple = d.os_name == "iOS"
    static: dict[str, Any] = {
        "user_id": user.user_id,
        "app_id": user.app_id,
        "app_version": user.app_version,
        "brand": d.brand,
        "model": d.model,
        "os_name": d.os_name,
        "os_version": d.os_version,
        "time_zone": user.time_zone,
        "screen_width_px": d.width_px,
        "screen_height_px": d.height_px,
        "screen_size_in": d.screen_in,
        "hardware_version": d.hardware_version,
        "software_version": d.software_version,
        "browser_type": d.browser_type,
        # iOS exposes neither IMEI, MAC, serial nor the installed-app list to apps.
        "imei": None if apple else d.imei,
        "mac_address": None if apple else d.mac_address,
        "android_id": d.android_id,
        "advertising_id": d.advertising_id,
        "serial_number": None if apple else d.serial_number,
    }
    device = {name: static.get(name) for name in field_tags("device_event")}
    log = {name: static.get(name) for name in field_tags("log_event")}
    return device, log


class Simulation:
    """Consent timelines and events of a `Fleet`, generated lazily and deterministically."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        policy_version: int = CURRENT_POLICY_VERSION,
        unknown_share: float = 0.03,
        change_rate: float = 0.03,
        new_user_share: float = 0.1,
        device_share: float = 0.4,
    ) -> None:
        for value in (unknown_share, change_rate, new_user_share, device_share):
            if not 0.0 <= value <= 1.0:
                raise SimulationError("shares and rates must lie between 0 and 1")
        if policy_version < 1:
            raise SimulationError("the policy version must be at least 1")
        self.fleet = fleet
        self.policy_version = policy_version
        self.unknown_share = unknown_share if fleet.unregistered else 0.0
        self.change_rate = change_rate
        self.device_share = device_share
        rng = random.Random(fleet.seed * 7_919 + 1)
        self._initial: dict[str, dict[str, Any] | None] = {}
        for user in fleet.registered:
            new = rng.random() < new_user_share
            self._initial[user.user_id] = (
                None if new else history(rng, user, fleet.start_ms, policy_version)
            )
        self._bases = {u.user_id: _bases(u) for u in fleet.users}
        self._registered_cum = list(accumulate(u.activity for u in fleet.registered))

    def items(
        self, count: int | None = None, duration_ms: int | None = None, rate_per_s: float = 2000.0
    ) -> Iterator[Item]:
        """Items in publish order, until `count` events or `duration_ms` of nominal send time."""
        # Consent records do not count towards `count`; with neither bound the stream never ends.
        if rate_per_s <= 0 or (count is not None and count < 0):
            raise SimulationError("rate must be positive and count not negative")
        return self._run(count, duration_ms, 1000.0 / rate_per_s)

    def _run(self, count: int | None, duration_ms: int | None, interval: float) -> Iterator[Item]:
        rng = random.Random(self.fleet.seed * 104_729 + 2)
        states: dict[str, _UserState] = {}
        index = 0
        while True:
            offset = int(index * interval)
            if (count is not None and index >= count) or (
                duration_ms is not None and offset >= duration_ms
            ):
                return
            user = self._pick_user(rng, states)
            state = states.get(user.user_id)
            if state is None:
                state = states[user.user_id] = _UserState(self._initial.get(user.user_id))
            consents, events = self._batch(rng, user, state, self.fleet.start_ms + offset)
            for record in consents:
                yield Item("consent_record", record, offset)
            for event_type, record in events:
                offset = int(index * interval)
                if (count is not None and index >= count) or (
                    duration_ms is not None and offset >= duration_ms
                ):
                    return
                yield Item(event_type, record, offset)
                index += 1

    def _pick_user(self, rng: random.Random, states: dict[str, _UserState]) -> User:
        fleet = self.fleet
        if rng.random() < self.unknown_share:
            return rng.choice(fleet.unregistered)
        for _ in range(10):
            user = rng.choices(fleet.registered, cum_weights=self._registered_cum)[0]
            state = states.get(user.user_id)
            # A cancelled account rarely sends again (a stale app that was never logged out).
            if state is None or not state.cancelled or rng.random() < 0.05:
                break
        return user

    def _batch(
        self, rng: random.Random, user: User, state: _UserState, send_ms: int
    ) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        """One upload: consent records to publish first, then the batch's events."""
        n = 1 + min(int(rng.expovariate(1 / 6)), 40)
        hi = send_ms - 200 - int(rng.random() * 4_800)
        lo = min(max(state.last_event + 1, hi - int(rng.uniform(3_000, 180_000))), send_ms)
        hi = min(max(hi, lo), send_ms)
        rnd, span = rng.random, hi - lo + 1
        times = sorted(lo + int(rnd() * span) for _ in range(n))
        state.last_event = times[-1]
        session = state.session
        opened = session is None or times[0] > session.end
        if opened:
            session = state.session = open_session(rng, user, times[0])
        assert session is not None
        consents: list[dict[str, Any]] = []
        if user.registered:
            if not state.published:
                if state.consent is None:
                    # A new user: the consent dialog at first open; some SDKs collect first.
                    early = rng.random() < 0.3 and times[-1] > times[0]
                    at = rng.randint(times[0] + 1, times[-1]) if early else times[0]
                    state.consent = signup(rng, user, at, self.policy_version)
                state.published = True
                consents.append(copy_consent(state.consent))
            elif not state.cancelled and rng.random() < self.change_rate:
                assert state.consent is not None
                at = rng.choice(times) if rng.random() < 0.15 else rng.randint(lo, send_ms)
                at = max(at, state.consent["updated_at"])
                policy = self.policy_version
                kind, name = pick_change(rng, state.consent, user, policy, cancel=True)
                state.consent = apply_change(state.consent, kind, name, at)
                state.cancelled = kind == "cancel"
                consents.append(copy_consent(state.consent))
        device_base, log_base = self._bases[user.user_id]
        events: list[tuple[str, dict[str, Any]]] = []
        for i, t in enumerate(times):
            if i == 0 and opened:
                events.append(("log_event", self._log(rng, user, session, log_base, t, "APP_OPEN")))
                continue
            if rng.random() < (0.05 if session.foreground else 0.3):
                session.foreground = not session.foreground
            if rng.random() < self.device_share:
                events.append(("device_event", self._device(rng, user, session, device_base, t)))
            else:
                if session.foreground:
                    log_type = _FG_LOGS[bisect(_FG_CUM, rng.random())]
                else:
                    log_type = "SYSTEM" if rng.random() < 0.5 else "USAGE"
                events.append(("log_event", self._log(rng, user, session, log_base, t, log_type)))
                if log_type == "CRASH":
                    session.end = t
        return consents, events

    def _device(
        self, rng: random.Random, user: User, s: Session, base: dict[str, Any], t: int
    ) -> dict[str, Any]:
        """A device event at `t`: battery on its daily curve, signal, storage, place."""
        d = user.device
        rnd = rng.random
        rec = base.copy()
        rec["event_id"] = uuid4(rng)
        rec["event_time"] = t
        rec["ip_address"] = s.ip
        rec["app_state"] = "FOREGROUND" if s.foreground else "BACKGROUND"
        rec["plugins"] = list(d.plugins) if d.plugins is not None else None
        rec["bluetooth_enabled"] = s.bluetooth
        rec["network_status"] = s.network
        level, charging = battery(d, t + user.tz_offset_ms, t - s.start, foreground=s.foreground)
        rec["battery_level_pct"] = level
        rec["battery_charging"] = charging
        if s.network != "OFFLINE":
            rec["signal_strength_dbm"] = s.signal + int(rnd() * 7) - 3
        hours = (t - self.fleet.start_ms) / HOUR
        rec["free_storage_mb"] = max(int(d.free_storage_mb - d.storage_drain_mb_per_h * hours), 50)
        rec["wifi_bssid"] = s.bssid
        rec["wifi_ssid"] = s.ssid
        if rnd() < 0.7:
            accuracy = 3.0 + rnd() * 22.0 if s.source == "GPS" else 15.0 + rnd() * 45.0
            rec["latitude"] = round(s.lat + (rnd() - 0.5) * accuracy / 55_660, 6)
            rec["longitude"] = round(s.lon + (rnd() - 0.5) * accuracy / 47_500, 6)
            rec["location_accuracy_m"] = round(accuracy, 1)
            rec["location_source"] = s.source
        if base["imei"] is not None and rnd() < 0.5:
            rec["installed_apps"] = list(d.installed_apps)
        return rec

    def _log(
        self, rng: random.Random, user: User, s: Session, base: dict[str, Any], t: int, kind: str
    ) -> dict[str, Any]:
        """A log event at `t`: page views carry URLs, crashes and system events carry text."""
        rnd = rng.random
        rec = base.copy()
        rec["event_id"] = uuid4(rng)
        rec["event_time"] = t
        rec["ip_address"] = s.ip
        rec["log_type"] = kind
        rec["session_id"] = s.session_id
        rec["app_open_time"] = s.start
        if kind == "PAGE_VIEW":
            pii = rnd() < 0.15
            path = rng.choice(CATALOG.pii_pages if pii else CATALOG.pages)
            url = f"https://{user.domain}" + path.format_map(_Fill(rng, user, s))
            rec["page_url"] = url.replace("@", "%40") if pii and rnd() < 0.3 else url
            rec["usage_duration_ms"] = int(rng.lognormvariate(9.5, 1.0))
        elif kind == "USAGE":
            rec["usage_duration_ms"] = max(t - s.start, 0) + int(rng.lognormvariate(8.0, 1.0))
        elif kind == "CRASH":
            template = rng.choice(CATALOG.pii_crashes if rnd() < 0.4 else CATALOG.crashes)
            rec["message"] = template.format_map(_Fill(rng, user, s))
        elif kind == "SYSTEM":
            name, template = rng.choice(CATALOG.system_events)
            if name == "wifi_connected" and s.ssid is None:
                name, template = CATALOG.system_events[0]
            rec["system_event"] = name
            rec["message"] = template.format_map(_Fill(rng, user, s))
        return rec


_UUID_MASK = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_BITS = (0x8000 << 48) | (4 << 76)


def uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID string drawn from `rng`, cheaper than `uuid.UUID`."""
    h = f"{rng.getrandbits(128) & _UUID_MASK | _UUID_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Fill:
    """Values a URL or message template names, drawn only when the template asks."""

    __slots__ = ("rng", "session", "user")

    def __init__(self, rng: random.Random, user: User, session: Session) -> None:
        self.rng, self.user, self.session = rng, user, session

    def __getitem__(self, key: str) -> object:
        return _FILLERS[key](self.rng.random, self.user, self.session)


_Filler = Callable[[Callable[[], float], User, Session], object]
_FILLERS: dict[str, _Filler] = {
    "n": lambda rnd, u, s: 1000 + int(rnd() * 999_000),
    "p": lambda rnd, u, s: 1 + int(rnd() * 9),
    "mm": lambda rnd, u, s: f"{1 + int(rnd() * 12):02d}",
    "dd": lambda rnd, u, s: f"{1 + int(rnd() * 28):02d}",
    "line": lambda rnd, u, s: 40 + int(rnd() * 2400),
    "phone": lambda rnd, u, s: u.phone,
    "email": lambda rnd, u, s: u.email,
    "imei": lambda rnd, u, s: u.device.imei,
    "user_id": lambda rnd, u, s: u.user_id,
    "id_card": lambda rnd, u, s: u.id_card,
    "name": lambda rnd, u, s: u.name,
    "lat": lambda rnd, u, s: f"{s.lat + (rnd() - 0.5) * 0.0004:.6f}",
    "lon": lambda rnd, u, s: f"{s.lon + (rnd() - 0.5) * 0.0004:.6f}",
    "acc": lambda rnd, u, s: 5 + int(rnd() * 55),
    "ip": lambda rnd, u, s: s.ip,
    "ssid": lambda rnd, u, s: s.ssid,
    "bssid": lambda rnd, u, s: s.bssid,
    "old": lambda rnd, u, s: "WIFI" if s.network != "WIFI" else "CELL_4G",
    "new": lambda rnd, u, s: s.network,
    "mem": lambda rnd, u, s: 90 + int(rnd() * 510),
    "battery": lambda rnd, u, s: 5 + int(rnd() * 15),
    "app_version": lambda rnd, u, s: u.app_version,
    "free": lambda rnd, u, s: 200 + int(rnd() * 700),
}
