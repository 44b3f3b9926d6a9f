"""Consent at the edges: the change a service publishes (`ConsentChange`) and the user's
full record the consent writer keeps (`ConsentRecord`), with their parts.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from schemas.fields import consent_vocabulary
from schemas.model_types import AccountStatus, AvroInt, AvroLong, AvroModel, EpochMs, Id


class ConsentGrant(AvroModel):
    """State of one purpose or category: granted or withdrawn, and since when."""

    granted: bool
    since: EpochMs


class PolicyAcceptance(AvroModel):
    """One accepted privacy-policy version and when."""

    version: Annotated[AvroInt, Field(ge=0)]
    accepted_at: EpochMs


ConsentChangeKind = Literal[
    "GRANT_PURPOSE",
    "WITHDRAW_PURPOSE",
    "GRANT_CATEGORY",
    "WITHDRAW_CATEGORY",
    "ACCEPT_POLICY",
    "SET_BIRTH",
    "GRANT_GUARDIAN",
    "WITHDRAW_GUARDIAN",
    "CANCEL",
]
_NEEDS_NAME = {"GRANT_PURPOSE", "WITHDRAW_PURPOSE", "GRANT_CATEGORY", "WITHDRAW_CATEGORY"}


def _check_birth_year(birth_date: date | None, birth_year: int | None) -> None:
    if birth_date is not None and birth_year is not None and birth_date.year != birth_year:
        raise ValueError("birth_year disagrees with birth_date")


class _ChangeFields(AvroModel):
    """What a consent change says (shared by the published change and its applied form)."""

    change_id: Id
    kind: ConsentChangeKind
    name: str | None = None
    policy_version: Annotated[AvroInt, Field(ge=1)] | None = None
    birth_date: date | None = None
    birth_year: Annotated[AvroInt, Field(ge=1900, le=2200)] | None = None
    declared_minor: bool | None = None
    made_at: EpochMs

    @model_validator(mode="after")
    def _check_kind(self) -> Self:
        vocabulary = consent_vocabulary()
        if self.kind in _NEEDS_NAME:
            names = vocabulary.purposes if "PURPOSE" in self.kind else vocabulary.categories
            if self.name not in names:
                raise ValueError(f"{self.kind} needs a name among {sorted(names)}")
        elif self.name is not None:
            raise ValueError(f"{self.kind} takes no name")
        if (self.kind == "ACCEPT_POLICY") != (self.policy_version is not None):
            raise ValueError("policy_version goes with ACCEPT_POLICY, and only with it")
        birth = (self.birth_date, self.birth_year, self.declared_minor)
        if self.kind != "SET_BIRTH" and any(v is not None for v in birth):
            raise ValueError("birth data goes with SET_BIRTH only")
        _check_birth_year(self.birth_date, self.birth_year)
        return self


class ConsentChange(_ChangeFields):
    """One change a user made to their consent, published by a backend service (SPEC 5)."""

    schema_name: ClassVar[str] = "consent_change"

    user_id: Id


class AppliedConsentChange(_ChangeFields):
    """A change folded into a consent record, with its arrival order at the writer."""

    seq: AvroLong


class ConsentRecord(AvroModel):
    """A user's full latest consent state; purpose and category names come from the vocabulary."""

    schema_name: ClassVar[str] = "consent_record"

    user_id: Id
    version: Annotated[AvroLong, Field(ge=0)]
    updated_at: EpochMs
    account_status: AccountStatus
    cancelled_at: EpochMs | None = None
    policy_acceptances: list[PolicyAcceptance] = Field(default_factory=list)
    purposes: dict[str, ConsentGrant] = Field(default_factory=dict)
    categories: dict[str, ConsentGrant] = Field(default_factory=dict)
    birth_date: date | None = None
    birth_year: Annotated[AvroInt, Field(ge=1900, le=2200)] | None = None
    declared_minor: bool | None = None
    guardian_consent: ConsentGrant | None = None
    changes: list[AppliedConsentChange] = Field(default_factory=list)
    compacted_before: EpochMs | None = None
    compacted_ids: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        vocabulary = consent_vocabulary()
        unknown_purposes = sorted(set(self.purposes) - set(vocabulary.purposes))
        if unknown_purposes:
            raise ValueError(f"unknown purposes {unknown_purposes}")
        unknown_categories = sorted(set(self.categories) - set(vocabulary.categories))
        if unknown_categories:
            raise ValueError(f"unknown categories {unknown_categories}")
        if self.account_status == "CANCELLED" and self.cancelled_at is None:
            raise ValueError("a CANCELLED account needs cancelled_at")
        _check_birth_year(self.birth_date, self.birth_year)
        return self
