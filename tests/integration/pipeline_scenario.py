"""A hand-built consent scenario: about 35 users covering every consent rule of SPEC 5,
in two waves of changes.

Its vocabulary is in scenario_types.py; the oracle (the expected outcome of each event)
in scenario_oracle.py; what it publishes, and how the released records are paired with
the oracle's passes, in scenario_records.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from tests.integration.scenario_types import (
    APPS,
    DAY_MS,
    HOUR_MS,
    IDS,
    LOC,
    PlannedEvent,
    S,
    Step,
    UserScript,
)


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (28 Feb stands in for 29 Feb)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def scenario_start(now_ms: int) -> int:
    """t0: ten minutes into the previous UTC hour, so every event shares one event hour."""
    return now_ms - now_ms % HOUR_MS - HOUR_MS + 10 * 60 * S


def build_scenario(t0: int, run: str) -> list[UserScript]:
    """About 35 users covering every consent rule of SPEC 5, in two waves of changes."""
    long_ago = t0 - 2 * DAY_MS
    day = datetime.fromtimestamp(t0 / 1000, tz=UTC).date()

    def at(seconds: int) -> int:
        return t0 + seconds * S

    pol2 = Step("policy", long_ago, version=2)
    pol1 = Step("policy", long_ago, version=1)
    grant = Step("grant", long_ago)
    base = [pol2, grant]
    loc = Step("grant_cat", long_ago, name=LOC)
    users: list[UserScript] = []

    def user(
        label: str,
        steps: list[Step],
        events: list[tuple[str, int, str, int]],
        **kwargs: Any,
    ) -> None:
        index = len(users)
        assert [s.at_ms for s in steps] == sorted(s.at_ms for s in steps), label
        planned = [
            PlannedEvent(
                f"u{index:02d}e{i:02d}",
                "device_event" if kind == "dev" else "log_event",
                when,
                wave,
                location="L" in flags,
                device_ids="I" in flags,
                apps="A" in flags,
            )
            for i, (kind, when, flags, wave) in enumerate(events)
        ]
        users.append(UserScript(label, f"{run}-{index:02d}", list(steps), planned, **kwargs))

    def dev(when: int, flags: str = "", wave: int = 1) -> tuple[str, int, str, int]:
        return ("dev", when, flags, wave)

    def log(when: int, wave: int = 1) -> tuple[str, int, str, int]:
        return ("log", when, "", wave)

    both = [dev(at(30), "L"), dev(at(90), "L"), log(at(60)), log(at(120))]
    user("granted_long_ago", [*base, loc], both)
    user("granted_long_ago_b", [*base, loc], both)
    user(
        "grant_at_event_time",
        [pol2, Step("grant", at(60))],
        [log(at(60)), log(at(60) - 1), dev(at(120), "LI")],
    )
    user(
        "withdrawn_at_event_time",
        [*base, Step("withdraw", at(60))],
        [log(at(60)), log(at(30)), dev(at(90), "L")],
    )
    user(
        "withdrawn_then_regranted",
        [*base, Step("withdraw", at(60)), Step("grant", at(120))],
        [log(at(30)), log(at(90)), log(at(120)), log(at(150))],
    )
    user(
        "collected_before_first_grant",
        [pol2, Step("grant", at(120))],
        [log(at(30)), dev(at(60)), log(at(150))],
    )
    user("category_without_analytics", [pol2, loc], [dev(at(60), "L"), log(at(60))])
    user(
        "cancelled",
        [*base, Step("cancel", at(60))],
        [log(at(30)), log(at(90)), dev(at(30))],
    )
    user("tombstoned", [*base, Step("tombstone", at(5))], [log(at(30)), dev(at(90))])
    user("unknown", [], [log(at(30)), dev(at(30), "L")], registered=False)
    user("old_policy", [pol1, grant], [log(at(30)), dev(at(60))])
    user(
        "policy_upgraded_after_event",
        [pol1, grant, Step("policy", at(90), version=2)],
        [log(at(60)), log(at(90)), log(at(120))],
    )
    user(
        "policy_upgraded_before_event",
        [pol1, grant, Step("policy", at(30), version=2)],
        [log(at(60)), log(at(90))],
    )
    thirteen = years_before(day, 13)
    user("minor_13_without_guardian", base, [log(at(60))], birth_date=thirteen)
    user(
        "minor_13_with_guardian",
        [*base, loc, Step("guardian", long_ago)],
        [log(at(60)), dev(at(90), "L")],
        birth_date=thirteen,
    )
    user(
        "birth_year_only",
        base,
        [log(at(60))],
        birth_date=None,
        birth_year=day.year - 14,
    )
    user(
        "turns_14_on_event_date",
        base,
        [log(at(60)), dev(at(90))],
        birth_date=years_before(day, 14),
    )
    user("no_birth_data", base, [log(at(60))], birth_date=None)
    user("location_granted", [*base, loc], [dev(at(60), "L"), dev(at(120), "L")])
    user(
        "location_withdrawn_before_event",
        [*base, loc, Step("withdraw_cat", at(30), name=LOC)],
        [dev(at(60), "L"), dev(at(20), "L")],
    )
    user(
        "location_withdrawn_after_event",
        [*base, loc, Step("withdraw_cat", at(600), name=LOC)],
        [dev(at(60), "L")],
    )
    user(
        "location_granted_at_event_time",
        [*base, Step("grant_cat", at(120), name=LOC)],
        [dev(at(60), "L"), dev(at(120), "L")],
    )
    user("device_ids_not_granted", base, [dev(at(60), "LI")])
    user("device_ids_granted", [*base, Step("grant_cat", long_ago, name=IDS)], [dev(at(60), "I")])
    user("apps_not_granted", [*base, loc], [dev(at(60), "LA")])
    user(
        "apps_granted",
        [*base, loc, Step("grant_cat", long_ago, name=APPS)],
        [dev(at(60), "LA")],
    )
    # Pairs with apps_granted: a released group shows the app count only if both keep it.
    user(
        "apps_granted_b",
        [*base, loc, Step("grant_cat", long_ago, name=APPS)],
        [dev(at(90), "LA")],
    )
    # Wave 2: changes published after wave 1 was processed, then events collected before them.
    user(
        "w2_withdrawn",
        [*base, loc, Step("withdraw", at(600), wave=2)],
        [dev(at(300), "L"), log(at(300)), dev(at(400), "L", 2), log(at(400), 2)],
    )
    user(
        "w2_withdrawn_then_regranted",
        [*base, Step("withdraw", at(600), wave=2), Step("grant", at(660), wave=2)],
        [log(at(300)), log(at(400), 2), log(at(700), 2)],
    )
    user(
        "w2_location_withdrawn",
        [*base, loc, Step("withdraw_cat", at(600), wave=2, name=LOC)],
        [dev(at(300), "L"), dev(at(400), "L", 2)],
    )
    user(
        "w2_cancelled",
        [*base, Step("cancel", at(600), wave=2)],
        [log(at(300)), log(at(400), 2)],
    )
    for suffix in ("a", "b"):
        user(
            f"w2_control_located_{suffix}",
            [*base, loc],
            [dev(at(300), "L"), log(at(300)), dev(at(450), "L", 2), log(at(450), 2)],
        )
        user(
            f"w2_control_unlocated_{suffix}",
            base,
            [dev(at(300)), log(at(300)), dev(at(450), "", 2), log(at(450), 2)],
        )
    # Evens out the classes of passing events so that `pair_versions` can pair them all.
    user("pairing_filler", base, [log(at(300)), dev(at(450), "", 2), log(at(450), 2)])
    user("pairing_filler_located", [*base, loc], [dev(at(300), "L")])
    return users
