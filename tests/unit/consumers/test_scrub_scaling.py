"""No record can stall the scrubber: its work is linear in the text, whatever the text holds.

No test here reads a clock (CI machines are busy). The Python work is counted instead:
`sys.settrace` counts the lines run, which must grow like the input (8x the text, at
most 10x the lines; a quadratic step would give about 64x). The regex engine's own work
is invisible to a tracer, so every recognizer regex is checked against the rules of
`consumers.recognizers.base` that make it linear, and 1 MB adversarial fields must be
scrubbed at all (a backtracking or rescanning regex would not finish before the suite's
per-test timeout). benchmarks/scrub_scaling.py times the same inputs.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from re import _constants as sre  # the parsed form of a regex; only a test reads it
from re import _parser
from typing import Any

import pytest

import consumers.recognizers
from consumers.anonymization_config import DEFAULT_POLICY_PATH, load_policy, parse_policy
from consumers.anonymize import TOO_LONG, Anonymizer
from consumers.recognizers import RECOGNIZERS
from consumers.recognizers.base import Finding
from consumers.scrub import MAX_TEXT_CHARS, ScrubResult, resolve_overlaps, scrub
from schemas.fields import field_tags
from tests.unit.consumers.test_scrub import naive_resolution

MB = 1 << 20

# unit -> what scrubbing a text of that unit repeated finds: one entity per unit, or nothing.
ADVERSARIAL: dict[str, str | None] = {
    "alice@example.com ": "EMAIL",  # e-mails back to back
    "a@b.co,": "EMAIL",
    "13800138000@139.com ": "EMAIL",  # a phone number nested in each e-mail
    "13800138000 ": "PHONE",
    "490154203237518 ": "IMEI",
    "11010519491231002X ": "RESIDENT_ID",
    "2001:db8::8a2e:370:7334 ": "IP",
    "::ffff:192.0.2.1 ": "IP",  # an IPv4 address nested in each IPv6 one
    "10.20.30.40 ": "IP",
    "3C:22:FB:12:34:56 ": "MAC",
    "123e4567-e89b-12d3-a456-426614174000 ": "UUID",
    "idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC ": "AD_ID",  # a UUID nested in each id
    "lat=39.90 ": "COORDINATES",
    "39.9042,116.4074 ": "COORDINATES",
    'ssid="Home Net" ': "WIFI_SSID",
    "1": None,  # one long run of digits
    "deadbeef": None,  # one long run of hex
    "1.": None,
    ".": None,
    ":": None,
    "fe80:": None,
    "::": None,
    "1:2:3:4:5:6:7:8:9:": None,
    "@": None,
    "a@": None,
    "@a.": None,
    "%41": None,
    "%40a": None,
    "-": None,
    "1-": None,
    "1234 ": None,
    "aa-": None,
    "dead-beef-": None,
    "lat": None,  # a long word the coordinates prefilter once rescanned from each `l`
    "latlonlng.": None,
    "lat ": None,
    "=": None,
    "= ": None,
    "ssid": None,
    "1.2345, ": None,
    "idfa=": None,
    "+86": None,
}
ONE_MB_UNITS = [unit for unit, entity in ADVERSARIAL.items() if entity is None] + [
    "alice@example.com ",
    "13800138000@139.com ",
    "490154203237518 ",
    "2001:db8::8a2e:370:7334 ",
    "::ffff:192.0.2.1 ",
    "idfa=6D92078A-8246-4BA4-AE5B-76104861E7DC ",
]


def repeated(unit: str, size: int) -> str:
    """Whole copies of `unit`, about `size` characters in all."""
    return unit * max(1, size // len(unit))


def expected(unit: str, text: str) -> dict[str, int]:
    entity = ADVERSARIAL[unit]
    return {} if entity is None else {entity: len(text) // len(unit)}


def lines_run(fn: Callable[[], Any]) -> int:
    """How many Python lines (and calls) `fn` runs: deterministic, unlike a clock."""
    count = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


@pytest.mark.parametrize("unit", list(ADVERSARIAL))
def test_scrubbing_work_grows_linearly_with_the_text(unit: str) -> None:
    small, large = repeated(unit, 8 * 1024), repeated(unit, 64 * 1024)
    assert lines_run(lambda: scrub(large)) <= 10 * lines_run(lambda: scrub(small))


@pytest.mark.parametrize("unit", ONE_MB_UNITS)
def test_a_one_megabyte_adversarial_field_is_scrubbed(unit: str) -> None:
    text = repeated(unit, MB)
    assert scrub(text).found == expected(unit, text)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a" * MB + "@example.com", {"EMAIL": 1}),  # one long local part
        ("x@" + "a." * (MB // 2) + "com", {"EMAIL": 1}),  # a domain of half a million labels
        ("x@" + "a." * (MB // 2) + "1", {}),  # ... that has no top-level domain
        ("lat=1." + "5" * MB, {"COORDINATES": 1}),
        ("=" + " " * MB + "x", {}),
        ("ssid:" + " " * MB, {}),
        ("1.1234" + "5" * MB + ",2.5", {}),
    ],
)
def test_a_one_megabyte_token_is_scrubbed(text: str, found: dict[str, int]) -> None:
    assert scrub(text).found == found


def test_the_work_count_catches_the_old_quadratic_overlap_check() -> None:
    def disjoint(n: int) -> list[Finding]:
        return [Finding(2 * i, 2 * i + 1, "EMAIL", 80) for i in range(n)]

    small, large = disjoint(100), disjoint(800)
    assert lines_run(lambda: naive_resolution(large)) > 10 * lines_run(
        lambda: naive_resolution(small)
    )
    assert lines_run(lambda: resolve_overlaps(large)) <= 10 * lines_run(
        lambda: resolve_overlaps(small)
    )


# --- every regex of a recognizer is structurally linear ----------------------------

REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
ONE_CHAR = (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN, sre.CATEGORY)
ALPHABET = [chr(code) for code in range(128)] + list("éß设\u00a0\u3000\u2028\u0663")
CATEGORIES: dict[str, Callable[[str], bool]] = {
    "CATEGORY_DIGIT": str.isdecimal,
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_WORD": lambda ch: ch.isalnum() or ch == "_",
}
Item = tuple[Any, Any]
Path = list[tuple[list[Item], int]]


def _in_category(category: Any, ch: str) -> bool:
    name = str(category)
    if name.startswith("CATEGORY_NOT_"):
        return not CATEGORIES["CATEGORY_" + name.removeprefix("CATEGORY_NOT_")](ch)
    return CATEGORIES[name](ch)


def _one_char_matches(item: Item, ch: str) -> bool:
    op, av = item
    if op is sre.LITERAL:
        return ord(ch) == av
    if op is sre.NOT_LITERAL:
        return ord(ch) != av
    if op is sre.ANY:
        return ch != "\n"
    if op is sre.CATEGORY:
        return _in_category(av, ch)
    negate = any(sub_op is sre.NEGATE for sub_op, _ in av)
    hit = any(
        (sub_op is sre.LITERAL and ord(ch) == sub_av)
        or (sub_op is sre.RANGE and sub_av[0] <= ord(ch) <= sub_av[1])
        or (sub_op is sre.CATEGORY and _in_category(sub_av, ch))
        for sub_op, sub_av in av
    )
    return hit != negate


def chars(item: Item, ignorecase: bool) -> frozenset[str]:
    """The characters (of ALPHABET) that `item` can consume."""
    if item[0] in ONE_CHAR:
        return frozenset(
            ch
            for ch in ALPHABET
            if any(
                _one_char_matches(item, variant)
                for variant in ({ch, ch.lower(), ch.upper()} if ignorecase else {ch})
                if len(variant) == 1
            )
        )
    return frozenset().union(*(chars(sub, ignorecase) for sub in _children(item)))


def _children(item: Item) -> list[Item]:
    op, av = item
    if op in REPEATS:
        return list(av[2])
    if op is sre.SUBPATTERN:
        return list(av[3])
    if op is sre.ATOMIC_GROUP:
        return list(av)
    if op is sre.BRANCH:
        return [sub for alternative in av[1] for sub in alternative]
    return []  # assertions and anchors consume nothing


def _sequences(item: Item) -> list[list[Item]]:
    op, av = item
    if op in REPEATS:
        return [list(av[2])]
    if op is sre.SUBPATTERN:
        return [list(av[3])]
    if op is sre.ATOMIC_GROUP:
        return [list(av)]
    if op is sre.BRANCH:
        return [list(alternative) for alternative in av[1]]
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [list(av[1])]
    return []


def _unbounded(item: Item) -> bool:
    return item[0] in REPEATS and item[1][1] == sre.MAXREPEAT


def _any_unbounded(items: list[Item]) -> bool:
    return any(
        _unbounded(item) or any(_any_unbounded(seq) for seq in _sequences(item)) for item in items
    )


def _repeats_with_paths(items: list[Item], path: Path) -> Iterator[tuple[Item, Path]]:
    for index, item in enumerate(items):
        here = [*path, (items, index)]
        if _unbounded(item):
            yield item, here
        for seq in _sequences(item):
            yield from _repeats_with_paths(seq, here)


def _verdict(item: Item, run: frozenset[str], ignorecase: bool) -> str:
    """'guard' if `item` always consumes a character outside `run` (within a bounded width
    of its end), 'pass' if it is bounded without one, 'block' if it is unbounded."""
    op, av = item
    if op in ONE_CHAR:
        return "pass" if chars(item, ignorecase) & run else "guard"
    if op is sre.ASSERT_NOT and av[0] == -1:  # (?<![...]) excluding the run's characters
        body = list(av[1])
        if len(body) == 1 and body[0][0] in ONE_CHAR and run <= chars(body[0], ignorecase):
            return "guard"
        return "pass"
    if op is sre.AT:
        return "guard" if av in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING) else "pass"
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return "pass"
    if op is sre.BRANCH:
        verdicts = [_seq_verdict(alt, run, ignorecase) for alt in _sequences(item)]
        if "block" in verdicts:
            return "block"
        return "guard" if all(v == "guard" for v in verdicts) else "pass"
    if op in REPEATS:
        if av[1] == sre.MAXREPEAT:
            return "block"
        inner = _seq_verdict(list(av[2]), run, ignorecase)
        return "pass" if inner == "guard" and av[0] == 0 else inner
    if op in (sre.SUBPATTERN, sre.ATOMIC_GROUP):
        return _seq_verdict(_sequences(item)[0], run, ignorecase)
    return "block"  # a back reference or conditional: not used, so not reasoned about


def _seq_verdict(items: list[Item], run: frozenset[str], ignorecase: bool) -> str:
    for item in reversed(items):
        verdict = _verdict(item, run, ignorecase)
        if verdict != "pass":
            return verdict
    return "pass"


def linearity_problems(pattern: re.Pattern[str]) -> list[str]:
    """Where `pattern` breaks the rules of consumers.recognizers.base (empty: none)."""
    parsed = _parser.parse(pattern.pattern, pattern.flags)
    ignorecase = bool(parsed.state.flags & re.IGNORECASE)
    problems = []
    for repeat, path in _repeats_with_paths(list(parsed), []):
        run = chars(repeat, ignorecase)
        where = f"{pattern.pattern!r}: repeat {len(problems) + 1}"
        enclosing = [seq[index] for seq, index in path[:-1]]
        if any(item[0] in REPEATS and item[1][1] > 1 for item in enclosing):
            problems.append(f"{where} is inside another repeat (rule 3)")
        if repeat[0] is not sre.POSSESSIVE_REPEAT:
            body = list(repeat[1][2])
            delimited = body[0][0] in ONE_CHAR and not (
                chars(body[0], ignorecase)
                & frozenset().union(*(chars(sub, ignorecase) for sub in body[1:]))
            )
            after: list[Item] = []
            for level, (seq, index) in enumerate(reversed(path)):
                if level and seq[index][0] in (sre.ASSERT, sre.ASSERT_NOT):
                    break  # a lookaround is atomic: nothing after it backtracks into it
                after += seq[index + 1 :]
            if not delimited or _any_unbounded(after):
                problems.append(f"{where} may give back with unbounded work after it (rule 1)")
        guarded = False
        for seq, index in reversed(path):
            verdict = _seq_verdict(seq[:index], run, ignorecase)
            if verdict != "pass":
                guarded = verdict == "guard"
                break
        if not guarded:
            problems.append(f"{where} can start inside its own run (rule 2)")
    return problems


def recognizer_regexes() -> dict[str, re.Pattern[str]]:
    """Every compiled regex at the top of every module of consumers.recognizers, by name."""
    found: dict[str, re.Pattern[str]] = {}
    for info in pkgutil.iter_modules(consumers.recognizers.__path__):
        module = importlib.import_module(f"consumers.recognizers.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found[f"{info.name}.{name}"] = value
            elif isinstance(value, tuple):
                for index, item in enumerate(value):
                    if isinstance(item, re.Pattern):
                        found[f"{info.name}.{name}[{index}]"] = item
    return found


REGEXES = recognizer_regexes()


def test_every_regex_of_a_listed_recognizer_is_checked() -> None:
    checked = {id(pattern) for pattern in REGEXES.values()}
    for rec in RECOGNIZERS:
        assert {id(pattern) for pattern in (*rec.patterns, rec.prefilter)} <= checked


@pytest.mark.parametrize("name", list(REGEXES))
def test_recognizer_regex_is_structurally_linear(name: str) -> None:
    assert linearity_problems(REGEXES[name]) == []


@pytest.mark.parametrize(
    "source",
    [
        r"[lL](?:[aA][tT]|[oO][nN]|[nN][gG])[A-Za-z]*[\"']?\s*[=:]",  # the old prefilter
        r"\d+x",  # rescans a run of digits from each digit
        r"(?:a+)+b",  # nested repeats
        r"(?:a|ab)*c",  # iterations with no delimiter
        r"=\s*\s*x",  # gives back into a run with another run after it
        r"=(?:\.[a-z]{0,5})*[a-z]+",
    ],
)
def test_the_rules_reject_regexes_that_backtrack_or_rescan(source: str) -> None:
    assert linearity_problems(re.compile(source))


# --- the anonymizer withholds free text over the cap ---------------------------------


class CountingScrubber:
    """A scrubber that records what it was given."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, text: str) -> ScrubResult:
        self.seen.append(len(text))
        return ScrubResult(text, {})


def log_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = dict.fromkeys(field_tags("log_event"))
    event.update(event_id="ev-1", user_id="user-1", event_time=1_790_000_123_456, app_id="com.a")
    event.update(log_type="CRASH", **overrides)
    return event


OVER_CAP = {
    "message": "mail alice@example.com " * (MAX_TEXT_CHARS // 23 + 1),
    "system_event": "x" * (MAX_TEXT_CHARS + 1),
    "page_url": "https://example.com/?q=" + "a" * MAX_TEXT_CHARS,
}


def test_free_text_over_the_cap_is_withheld_never_scrubbed_nor_released() -> None:
    scrubber = CountingScrubber()
    result = Anonymizer(load_policy(), scrubber).anonymize("log_event", log_event(**OVER_CAP))
    assert scrubber.seen == []
    assert result.record["message"] is None
    assert result.record["system_event"] is None
    assert result.record["url_template"] is None
    assert result.issues == {
        "message": TOO_LONG,
        "system_event": TOO_LONG,
        "url_template": TOO_LONG,
    }


def test_free_text_at_the_cap_is_scrubbed() -> None:
    scrubber = CountingScrubber()
    message = "x" * MAX_TEXT_CHARS
    result = Anonymizer(load_policy(), scrubber).anonymize("log_event", log_event(message=message))
    assert scrubber.seen == [MAX_TEXT_CHARS]
    assert result.record["message"] is not None
    assert result.issues == {}


def test_a_scrub_rule_withholds_text_over_the_cap() -> None:
    with DEFAULT_POLICY_PATH.open("rb") as handle:
        data = copy.deepcopy(tomllib.load(handle))
    data["schemas"]["log_event"]["fields"]["message"] = {"action": "scrub"}
    scrubber = CountingScrubber()
    anonymizer = Anonymizer(parse_policy(data), scrubber)
    result = anonymizer.anonymize("log_event", log_event(message=OVER_CAP["message"]))
    assert scrubber.seen == []
    assert result.record["message"] is None
    assert result.issues == {"message": TOO_LONG}
