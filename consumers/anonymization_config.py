"""The anonymization policy file: its pydantic model, and loading with every problem listed.

A policy (SPEC section 7) maps each field of each input schema to one action (drop, keep,
generalize, bucket, count_bucket, template, scrub, url_template) and the output
field it feeds, and gives every released output field a generalization ladder
(`consumers.release_policy`). It is validated once at start against the Avro schemas: an
unknown field, an input field with no rule, an identifier that is not dropped, a geohash
finer than precision 6, an output field of the wrong type or a released field without a
ladder is a `PolicyError` naming every problem at once.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from consumers.release_policy import STAGE_FIELDS, FieldFacts, ReleaseSpec, release_problems
from schemas.errors import ConsentgateError
from schemas.fields import field_tags, schema_path

DEFAULT_POLICY_PATH = Path(__file__).with_name("anonymization_policy.toml")
MAX_GEOHASH_PRECISION = 6


class PolicyError(ConsentgateError):
    """The anonymization policy file is unreadable or invalid; `problems` lists each issue."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"anonymization policy {source}: {len(problems)} problem(s):\n{lines}")


class _Rule(BaseModel):
    """Common base: unknown parameters are errors, rules are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DropRule(_Rule):
    """The field does not reach the output."""

    action: Literal["drop"]


class KeepRule(_Rule):
    """The value is copied unchanged (to `output`, by default the same name)."""

    action: Literal["keep"]
    output: str | None = None


class GeohashRule(_Rule):
    """Latitude (the rule's field) and `longitude` become one geohash of `precision` chars."""

    action: Literal["generalize"]
    kind: Literal["geohash"]
    output: str
    longitude: str
    precision: int = 5

    @field_validator("precision")
    @classmethod
    def _coarse_enough(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"geohash precision must be at least 1, got {value}")
        if value > MAX_GEOHASH_PRECISION:
            raise ValueError(
                f"geohash precision {value} is finer than the allowed maximum "
                f"{MAX_GEOHASH_PRECISION} (about 1.2 km x 0.6 km)"
            )
        return value


class IpPrefixRule(_Rule):
    """An IP address becomes its network: IPv4 /`ipv4_prefix`, IPv6 /`ipv6_prefix`."""

    action: Literal["generalize"]
    kind: Literal["ip_prefix"]
    output: str
    ipv4_prefix: Annotated[int, Field(ge=0, le=24)] = 24
    ipv6_prefix: Annotated[int, Field(ge=0, le=48)] = 48


class HourRule(_Rule):
    """An epoch-ms time is truncated to the start of its UTC hour."""

    action: Literal["generalize"]
    kind: Literal["hour"]
    output: str


class MajorMinorRule(_Rule):
    """A version string becomes `major.minor` ("14.2.1" -> "14.2")."""

    action: Literal["generalize"]
    kind: Literal["major_minor"]
    output: str


GeneralizeRule = Annotated[
    GeohashRule | IpPrefixRule | HourRule | MajorMinorRule, Field(discriminator="kind")
]


class BucketRule(_Rule):
    """A number becomes the label of its bucket: labels[i] holds edges[i-1] <= v < edges[i].

    Values outside [lower, upper] are implausible and become None. With `also`, the value
    bucketed is the `combine` (min or max) of this field and those, e.g. a screen's short side.
    """

    action: Literal["bucket"]
    output: str
    edges: list[float] = Field(min_length=1)
    labels: list[str]
    lower: float | None = None
    upper: float | None = None
    also: tuple[str, ...] = ()
    combine: Literal["min", "max"] = "min"

    @model_validator(mode="after")
    def _consistent(self) -> BucketRule:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bucket edges must be strictly increasing")
        if len(self.labels) != len(self.edges) + 1:
            raise ValueError(
                f"{len(self.edges)} bucket edges need {len(self.edges) + 1} labels, "
                f"got {len(self.labels)}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("bucket labels must be distinct")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError("bucket lower bound is above its upper bound")
        return self


class CountBucketRule(_Rule):
    """A list becomes its length's bucket label: labels[i] holds edges[i-1] <= n < edges[i]."""

    action: Literal["count_bucket"]
    output: str
    edges: list[int] = Field(min_length=1)
    labels: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> CountBucketRule:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("bucket edges must be strictly increasing")
        if len(self.labels) != len(self.edges) + 1 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{len(self.edges)} bucket edges need {len(self.edges) + 1} labels")
        return self


class ScrubRule(_Rule):
    """Free text goes through the scrubber; found personal data become type tokens."""

    action: Literal["scrub"]
    output: str | None = None


class TemplateRule(_Rule):
    """Free text is scrubbed, then every number, hex literal, quoted value and id is masked."""

    action: Literal["template"]
    output: str | None = None


class UrlTemplateRule(_Rule):
    """A URL becomes scheme://host/path with id-like segments `{id}`, query and fragment cut."""

    action: Literal["url_template"]
    output: str
    scrub: bool = True


Rule = Annotated[
    DropRule
    | KeepRule
    | GeneralizeRule
    | BucketRule
    | CountBucketRule
    | ScrubRule
    | TemplateRule
    | UrlTemplateRule,
    Field(discriminator="action"),
]


class SchemaPolicy(BaseModel):
    """The rules of one input schema and the output schema they fill."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str
    input_version: Annotated[int, Field(ge=1)] = 1
    output_version: Annotated[int, Field(ge=1)] = 1
    fields: dict[str, Rule]
    release: ReleaseSpec


class AnonymizationPolicy(BaseModel):
    """A whole policy: its version (copied into every output record) and rules per schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    schemas: dict[str, SchemaPolicy] = Field(min_length=1)


def rule_output(field_name: str, rule: Rule) -> str | None:
    """The output field a rule writes (None for drop)."""
    if isinstance(rule, DropRule):
        return None
    output = getattr(rule, "output", None)
    return output if isinstance(output, str) else field_name


def rule_inputs(field_name: str, rule: Rule) -> tuple[str, ...]:
    """Every input field a rule reads, its own field first."""
    if isinstance(rule, GeohashRule):
        return (field_name, rule.longitude)
    if isinstance(rule, BucketRule):
        return (field_name, *rule.also)
    return (field_name,)


@cache
def avro_field_types(name: str, version: int) -> dict[str, Any]:
    """Top-level Avro field types of schema `name`, keyed by field name."""
    schema = json.loads(schema_path(name, version).read_text(encoding="utf-8"))
    return {field["name"]: field["type"] for field in schema["fields"]}


def _branches(avro_type: Any) -> list[Any]:
    """The non-null branches of a (possibly union) Avro type."""
    if isinstance(avro_type, list):
        return [branch for branch in avro_type if branch != "null"]
    return [avro_type]


def _nullable(avro_type: Any) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


_RESULT_TYPES: dict[type, frozenset[str]] = {
    GeohashRule: frozenset({"string"}),
    IpPrefixRule: frozenset({"string"}),
    MajorMinorRule: frozenset({"string"}),
    BucketRule: frozenset({"string"}),
    ScrubRule: frozenset({"string"}),
    TemplateRule: frozenset({"string"}),
    UrlTemplateRule: frozenset({"string"}),
    CountBucketRule: frozenset({"string"}),
    HourRule: frozenset({"long"}),
}
"""Avro types an output field may have to receive each kind of rule's result."""


def _check_schema(schema_name: str, policy: SchemaPolicy) -> list[str]:
    """Semantic problems of one schema's rules against its input and output Avro schemas."""
    problems: list[str] = []
    where = schema_name
    try:
        inputs = avro_field_types(schema_name, policy.input_version)
        tags = field_tags(schema_name, policy.input_version)
    except (OSError, ValueError, ConsentgateError):
        return [f"{where}: no input schema {schema_name}.v{policy.input_version}"]
    try:
        outputs = avro_field_types(policy.output, policy.output_version)
    except (OSError, ValueError):
        return [f"{where}: no output schema {policy.output}.v{policy.output_version}"]

    covered: dict[str, str] = {}
    written: dict[str, str] = {}
    facts: dict[str, FieldFacts] = {}
    for name, rule in policy.fields.items():
        for read in rule_inputs(name, rule):
            if read not in inputs:
                problems.append(f"{where}.{name}: {read!r} is not a field of {schema_name}")
            elif read in covered:
                problems.append(
                    f"{where}.{read}: covered by both the {covered[read]!r} and the {name!r} rule"
                )
            else:
                covered[read] = name
        tag = tags.get(name)
        if tag is not None and tag.identifier and not isinstance(rule, DropRule | IpPrefixRule):
            problems.append(
                f"{where}.{name}: identifier field must be dropped, not {rule.action!r}"
            )
        if (
            tag is not None
            and tag.free_text
            and not isinstance(rule, DropRule | ScrubRule | TemplateRule | UrlTemplateRule)
        ):
            problems.append(
                f"{where}.{name}: free-text field must be drop, template, scrub or "
                f"url_template, not {rule.action!r}"
            )
        target = rule_output(name, rule)
        if target is None:
            continue
        if target in STAGE_FIELDS:
            problems.append(f"{where}.{name}: output {target!r} is set by the anonymizer")
            continue
        if target not in outputs:
            problems.append(f"{where}.{name}: output {target!r} is not a field of {policy.output}")
            continue
        if target in written:
            problems.append(
                f"{where}.{name}: output {target!r} is already written by {written[target]!r}"
            )
        written[target] = name
        facts[target] = _facts(rule, inputs.get(name), outputs[target])
        problems.extend(_type_problems(f"{where}.{name}", rule, inputs.get(name), outputs[target]))

    for name in inputs:
        if name not in covered:
            problems.append(f"{where}.{name}: input field has no rule (use drop to remove it)")
    for name, avro_type in outputs.items():
        if name not in STAGE_FIELDS and name not in written and not _nullable(avro_type):
            problems.append(f"{where}: required output field {name!r} has no rule")
    problems.extend(release_problems(where, policy.release, outputs, facts))
    return problems


def _facts(rule: Rule, input_type: Any, output_type: Any) -> FieldFacts:
    """What the ladder checks need to know of the values a rule writes."""
    values: frozenset[str] | None = None
    if isinstance(rule, BucketRule | CountBucketRule):
        values = frozenset(rule.labels)
    elif isinstance(rule, KeepRule):
        for branch in _branches(input_type):
            if isinstance(branch, dict) and branch.get("type") == "enum":
                values = frozenset(branch["symbols"])
    return FieldFacts(
        avro_type=output_type,
        values=values,
        geohash_precision=rule.precision if isinstance(rule, GeohashRule) else None,
        is_time=isinstance(rule, HourRule),
    )


def _type_problems(where: str, rule: Rule, input_type: Any, output_type: Any) -> list[str]:
    """Whether the output field's Avro type can hold what the rule produces."""
    if isinstance(rule, KeepRule):
        if not _holds(_branches(input_type), _branches(output_type)):
            return [f"{where}: keep needs the same type in input and output"]
        return []
    allowed = _RESULT_TYPES.get(type(rule), frozenset())
    if not any(branch in allowed for branch in _branches(output_type)):
        return [f"{where}: output type cannot hold the result of {rule.action!r}"]
    return []


def _holds(inputs: list[Any], outputs: list[Any]) -> bool:
    """Whether every input branch has an output branch of its type (an enum: a superset)."""
    for branch in inputs:
        if branch in outputs:
            continue
        if not (
            isinstance(branch, dict)
            and branch.get("type") == "enum"
            and any(
                isinstance(out, dict)
                and out.get("type") == "enum"
                and out.get("name") == branch.get("name")
                and set(branch["symbols"]) <= set(out["symbols"])
                for out in outputs
            )
        ):
            return False
    return True


def _format_validation_error(exc: ValidationError) -> list[str]:
    """One line per pydantic error, located by its path in the file (no input values)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "<top>"
        lines.append(f"{location}: {error['msg']}")
    return lines


def parse_policy(data: Mapping[str, Any], source: str = "<memory>") -> AnonymizationPolicy:
    """Validate a policy already read into a mapping (e.g. parsed TOML)."""
    try:
        policy = AnonymizationPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, _format_validation_error(exc)) from None
    problems: list[str] = []
    for schema_name, schema_policy in policy.schemas.items():
        problems.extend(_check_schema(schema_name, schema_policy))
    if problems:
        raise PolicyError(source, problems)
    return policy


def load_policy(path: Path = DEFAULT_POLICY_PATH) -> AnonymizationPolicy:
    """Read and validate a TOML policy file (the shipped default when no path is given)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(path.name, [f"cannot read the file: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(path.name, ["the file is not UTF-8"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(path.name, [f"not valid TOML: {exc}"]) from exc
    return parse_policy(data, path.name)
