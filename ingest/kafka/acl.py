"""Kafka ACLs as data: deploy/acl/acls.toml turned into the transport's ACL specs.

The topic prefix goes in front of the names of the resource types the file
lists in `prefixed_resources`, the same way the commands and workers prefix
topics, consumer groups and transactional ids.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.errors import ConfigError, validation_problems
from ingest.kafka.base import AclSpec

ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "acl" / "acls.toml"

Resource = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID", "CLUSTER"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE", "DESCRIBE_CONFIGS"]


class _Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource: Resource
    pattern: Literal["LITERAL", "PREFIXED"]
    names: list[str] = Field(min_length=1)
    operations: list[Operation] = Field(min_length=1)


class _Principal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str = Field(pattern=r"^User:[A-Za-z0-9._-]+$")
    doc: str
    grants: list[_Grant]


class _AclFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    prefixed_resources: list[Resource]
    principals: dict[str, _Principal]


def load_acls(prefix: str = "", path: Path = ACL_FILE) -> list[AclSpec]:
    """Every ALLOW rule of the file, with the prefix applied; ConfigError if it is invalid."""
    try:
        parsed = _AclFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read ACL file {path}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"ACL file {path.name}: {validation_problems(exc)[0]}") from None
    specs: list[AclSpec] = []
    for entry in parsed.principals.values():
        for grant in entry.grants:
            add_prefix = grant.resource in parsed.prefixed_resources
            for name in grant.names:
                for operation in grant.operations:
                    specs.append(
                        AclSpec(
                            principal=entry.principal,
                            resource_type=grant.resource.lower(),
                            name=prefix + name if add_prefix else name,
                            operation=operation.lower(),
                            prefixed=grant.pattern == "PREFIXED",
                        )
                    )
    return specs
