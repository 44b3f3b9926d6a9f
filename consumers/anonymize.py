"""The anonymization stage (SPEC section 7): a consented raw event in, its level-0 record out.

The validated policy is compiled once into a list of small per-field functions; each
reads the raw event and writes its output field, and returns a reason code when an odd
input value (wrong type, out of range, malformed URL) had to become None. No rule is
looked up per record. The result holds only the fields the policy releases, at their
finest releasable form (level 0); the k-anonymity window (`consumers.kanon`) decides how
far each is generalized, and the release adds a fresh `anon_id` and the policy versions.
"""

from __future__ import annotations

import ipaddress
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import pygeohash

from consumers.anonymization_config import (
    AnonymizationPolicy,
    BucketRule,
    CountBucketRule,
    DropRule,
    GeohashRule,
    HourRule,
    IpPrefixRule,
    KeepRule,
    MajorMinorRule,
    Rule,
    ScrubRule,
    TemplateRule,
    UrlTemplateRule,
    avro_field_types,
    rule_output,
)
from consumers.scrub import MAX_TEXT_CHARS
from consumers.text_template import template as text_template
from consumers.url_template import url_template
from schemas.errors import ConsentgateError
from schemas.fields import Sensitivity, field_tags

HOUR_MS = 3_600_000
LONG_MIN = -(2**63)


class AnonymizationError(ConsentgateError):
    """A record could not be anonymized; `reason` is a short code, never a value."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ScrubOutcome(Protocol):
    """What a scrubber returns: the cleaned text and counts of personal data found per type."""

    @property
    def text(self) -> str:
        """The text with personal data replaced by type tokens."""
        ...

    @property
    def found(self) -> Mapping[str, int]:
        """How many spans of each type were replaced."""
        ...


Scrubber = Callable[[str], ScrubOutcome]
Event = Mapping[str, Any]
FieldFn = Callable[[Event, dict[str, Any], dict[str, int]], str | None]
"""Reads the event, writes its output field (pre-set to None), counts scrubbed data,
returns a reason code when an odd value was turned into None."""


@dataclass(slots=True)
class AnonResult:
    """A level-0 record, the personal data scrubbed from its text and the nulled fields."""

    record: dict[str, Any]
    pii_found: dict[str, int]
    issues: dict[str, str]
    """Output field -> reason code, for fields nulled because the input value was odd."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One schema's compiled rules."""

    output_schema: str
    template: dict[str, Any]
    steps: tuple[tuple[str, FieldFn], ...]
    required: tuple[str, ...]


def _number(value: Any) -> float | int | None:
    """`value` if it is a plain int or a finite float (not a bool), else None."""
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is float and math.isfinite(value):
        return float(value)
    return None


def _odd(value: Any) -> str | None:
    """Reason code for a value that could not be used: None when it was simply absent."""
    return None if value is None else "invalid"


@dataclass(frozen=True, slots=True)
class TextContext:
    """What free-text rules need: the scrubber and the record's own identifier fields."""

    scrubber: Scrubber
    own: tuple[str, ...]


def _compile_keep(name: str, rule: KeepRule, output: str, ctx: TextContext) -> FieldFn:
    def keep(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        out[output] = event.get(name)
        return None

    return keep


def _compile_hour(name: str, rule: HourRule, output: str, ctx: TextContext) -> FieldFn:
    def hour(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if type(value) is not int:
            return _odd(value)
        truncated = value - value % HOUR_MS
        if truncated < LONG_MIN:
            return "out_of_range"
        out[output] = truncated
        return None

    return hour


_MAJOR_MINOR = re.compile(r"(?<![\d.])(\d{1,4})(?:\.(\d{1,4}))?(?![\d])")


@lru_cache(maxsize=4096)
def major_minor(version: str) -> str | None:
    """`major.minor` of a version string ("14.2.1" -> "14.2", "Android 13" -> "13")."""
    match = _MAJOR_MINOR.search(version)
    if match is None:
        return None
    major, minor = match.groups()
    return str(int(major)) if minor is None else f"{int(major)}.{int(minor)}"


def _compile_major_minor(name: str, rule: MajorMinorRule, output: str, ctx: TextContext) -> FieldFn:
    def generalize(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, str):
            return _odd(value)
        result = major_minor(value)
        out[output] = result
        return "unparseable" if result is None else None

    return generalize


def ip_prefix(address: str, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str | None:
    """The network of an IP address ("203.0.113.7" -> "203.0.113.0/24"), None if malformed."""
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.strip().split("%", 1)[0]
        )
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = ipv4_prefix if addr.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network((addr, bits), strict=False))


def _compile_ip(name: str, rule: IpPrefixRule, output: str, ctx: TextContext) -> FieldFn:
    v4, v6 = rule.ipv4_prefix, rule.ipv6_prefix

    def generalize(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, str):
            return _odd(value)
        result = ip_prefix(value, v4, v6)
        out[output] = result
        return "malformed_ip" if result is None else None

    return generalize


def _compile_geohash(name: str, rule: GeohashRule, output: str, ctx: TextContext) -> FieldFn:
    longitude, precision, encode = rule.longitude, rule.precision, pygeohash.encode

    def generalize(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        raw_lat, raw_lon = event.get(name), event.get(longitude)
        if raw_lat is None or raw_lon is None:
            return None if raw_lat is raw_lon else "incomplete"
        lat, lon = _number(raw_lat), _number(raw_lon)
        if lat is None or lon is None:
            return "invalid"
        try:
            out[output] = encode(float(lat), float(lon), precision)
        except ValueError:
            return "out_of_range"
        return None

    return generalize


def _compile_bucket(name: str, rule: BucketRule, output: str, ctx: TextContext) -> FieldFn:
    edges, labels = tuple(rule.edges), tuple(rule.labels)
    lower = -math.inf if rule.lower is None else rule.lower
    upper = math.inf if rule.upper is None else rule.upper
    combine = min if rule.combine == "min" else max
    names = (name, *rule.also)

    def bucket(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value: float | int | None = None
        for part in names:
            raw = event.get(part)
            number = _number(raw)
            if number is None:
                if raw is not None:
                    return "invalid"
                return None if all(event.get(p) is None for p in names) else "incomplete"
            value = number if value is None else combine(value, number)
        assert value is not None
        if not lower <= value <= upper:
            return "out_of_range"
        out[output] = labels[bisect_right(edges, value)]
        return None

    return bucket


def _compile_count_bucket(
    name: str, rule: CountBucketRule, output: str, ctx: TextContext
) -> FieldFn:
    edges, labels = tuple(rule.edges), tuple(rule.labels)

    def count_bucket(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, list | tuple):
            return _odd(value)
        out[output] = labels[bisect_right(edges, len(value))]
        return None

    return count_bucket


def _scrub_into(scrubber: Scrubber, text: str, pii: dict[str, int]) -> str:
    """Scrub `text`, adding the counts of what was found to `pii`."""
    outcome = scrubber(text)
    for kind, found in outcome.found.items():
        pii[kind] = pii.get(kind, 0) + found
    return outcome.text


MIN_OWN_VALUE = 4  # shorter identifier values are too common to redact by value
TOO_LONG = "too_long"
"""Reason code of a free-text field over `consumers.scrub.MAX_TEXT_CHARS`: withheld (None),
never released unscrubbed nor scrubbed in part."""


def _redact_own(event: Event, text: str, own: tuple[str, ...], pii: dict[str, int]) -> str:
    """Replace the record's own identifier and sensitive values found in its free text.

    Patterns cannot know that `8841920331` is this user's id or `Guojia` their
    Wi-Fi name; the record itself does, so its values are removed by value.
    """
    for field_name in own:
        value = event.get(field_name)
        if isinstance(value, str) and len(value) >= MIN_OWN_VALUE and value in text:
            kind = field_name.upper()
            pii[kind] = pii.get(kind, 0) + text.count(value)
            text = text.replace(value, f"<{kind}>")
    return text


def _compile_scrub(name: str, rule: ScrubRule, output: str, ctx: TextContext) -> FieldFn:
    def scrub(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, str):
            return _odd(value)
        if len(value) > MAX_TEXT_CHARS:
            return TOO_LONG
        out[output] = _scrub_into(ctx.scrubber, _redact_own(event, value, ctx.own, pii), pii)
        return None

    return scrub


def _compile_template(name: str, rule: TemplateRule, output: str, ctx: TextContext) -> FieldFn:
    def template(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, str):
            return _odd(value)
        if len(value) > MAX_TEXT_CHARS:
            return TOO_LONG
        scrubbed = _scrub_into(ctx.scrubber, _redact_own(event, value, ctx.own, pii), pii)
        out[output] = text_template(scrubbed)
        return None

    return template


def _compile_url(name: str, rule: UrlTemplateRule, output: str, ctx: TextContext) -> FieldFn:
    also_scrub = rule.scrub

    def template(event: Event, out: dict[str, Any], pii: dict[str, int]) -> str | None:
        value = event.get(name)
        if not isinstance(value, str):
            return _odd(value)
        if len(value) > MAX_TEXT_CHARS:
            return TOO_LONG
        result = url_template(value)
        if result is None:
            return "malformed_url"
        result = _redact_own(event, result, ctx.own, pii)
        out[output] = _scrub_into(ctx.scrubber, result, pii) if also_scrub else result
        return None

    return template


_COMPILERS: dict[type, Callable[[str, Any, str, TextContext], FieldFn]] = {
    KeepRule: _compile_keep,
    HourRule: _compile_hour,
    MajorMinorRule: _compile_major_minor,
    IpPrefixRule: _compile_ip,
    GeohashRule: _compile_geohash,
    BucketRule: _compile_bucket,
    CountBucketRule: _compile_count_bucket,
    ScrubRule: _compile_scrub,
    TemplateRule: _compile_template,
    UrlTemplateRule: _compile_url,
}
"""Rule type -> compiler. A new action is one compiler plus one line here."""


def _compile(schema_name: str, policy: AnonymizationPolicy, scrubber: Scrubber) -> _Compiled:
    """Compile one schema's rules into per-field functions and a record template."""
    schema_policy = policy.schemas[schema_name]
    output_types = avro_field_types(schema_policy.output, schema_policy.output_version)
    steps: list[tuple[str, FieldFn]] = []
    ctx = TextContext(
        scrubber=scrubber,
        own=tuple(
            tag.name
            for tag in field_tags(schema_name).values()
            if tag.identifier or tag.sensitivity is Sensitivity.SENSITIVE
        ),
    )
    rule: Rule
    for name, rule in schema_policy.fields.items():
        if isinstance(rule, DropRule):
            continue
        output = rule_output(name, rule)
        assert output is not None  # only drop rules have no output
        steps.append((output, _COMPILERS[type(rule)](name, rule, output, ctx)))
    written = [output for output, _ in steps]
    required = tuple(
        name
        for name in written
        if not (isinstance(output_types[name], list) and "null" in output_types[name])
    )
    return _Compiled(
        output_schema=schema_policy.output,
        template=dict.fromkeys(written),
        steps=tuple(steps),
        required=required,
    )


class Anonymizer:
    """Turns consented raw events into anonymized records by a compiled, validated policy."""

    def __init__(self, policy: AnonymizationPolicy, scrubber: Scrubber) -> None:
        self.policy_version = policy.version
        self._compiled = {name: _compile(name, policy, scrubber) for name in policy.schemas}

    def output_schema(self, schema_name: str) -> str:
        """Name of the output schema that `schema_name` events are anonymized into."""
        return self._lookup(schema_name).output_schema

    def anonymize(self, schema_name: str, event: Event) -> AnonResult:
        """Anonymize one event; odd values become None, noted in `issues`.

        Raises AnonymizationError only for an unknown schema or when a required output
        field (e.g. event_hour) cannot be produced, which decoded events never cause.
        """
        compiled = self._lookup(schema_name)
        out = compiled.template.copy()
        pii: dict[str, int] = {}
        issues: dict[str, str] = {}
        for output, step in compiled.steps:
            try:
                issue = step(event, out, pii)
            except Exception:  # a scrubber or library failure must not leak the value
                out[output] = None
                issue = "failed"
            if issue is not None:
                issues[output] = issue
        for name in compiled.required:
            if out[name] is None:
                raise AnonymizationError(
                    f"{schema_name}: required output field {name!r} could not be produced "
                    f"({issues.get(name, 'missing')})",
                    reason="required_field_missing",
                )
        return AnonResult(record=out, pii_found=pii, issues=issues)

    def _lookup(self, schema_name: str) -> _Compiled:
        try:
            return self._compiled[schema_name]
        except KeyError:
            raise AnonymizationError(
                f"no anonymization rules for schema {schema_name!r}", reason="unknown_schema"
            ) from None
