"""`consentgate consent grant|withdraw|cancel|show`: record a user's consent changes, or show them.

grant, withdraw and cancel publish one change per flag to the consent-changes topic
(with the time the user made it and an idempotency key), then wait until the
pipeline's consent writer has folded them into the user's record; show prints the
record from the compacted consent topic.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from consumers.consent_changes import (
    AcceptPolicy,
    Cancel,
    ConsentChange,
    GrantCategory,
    GrantGuardian,
    GrantPurpose,
    SetBirth,
    WithdrawCategory,
    WithdrawGuardian,
    WithdrawPurpose,
)
from ingest.cli.arguments import int_between, positive_float
from ingest.cli.connection import (
    add_connection_args,
    instant_ms,
    topics_from_args,
    transport_from_args,
)
from ingest.errors import TransportError, UsageError
from ingest.kafka.consent_store import read_consent
from ingest.sdk.consent_client import ConsentClient
from schemas.errors import ConsentgateError
from schemas.fields import consent_vocabulary

NAME = "consent"
HELP = "grant, withdraw, cancel or show a user's consent record"


# The consent schema's bounds, so a mistake is caught here, named by its option.
OLDEST_BIRTH_YEAR = 1900
MAX_ID_CHARS = 512
MAX_CHANGE_ID_CHARS = MAX_ID_CHARS - 4  # room for the -1, -2... of several changes
MAX_POLICY_VERSION = 2**31 - 1
CLOCK_SKEW_MS = 60_000
"""How far in the future --at may be (another machine's clock), in milliseconds."""


def _today() -> date:
    return datetime.now(UTC).date()


def _day(text: str) -> date:
    """argparse type: a birth date, YYYY-MM-DD, from 1900 to today."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None
    if not date(OLDEST_BIRTH_YEAR, 1, 1) <= day <= _today():
        raise argparse.ArgumentTypeError(
            f"must be between {OLDEST_BIRTH_YEAR}-01-01 and today, not {text}"
        )
    return day


def _birth_year(text: str) -> int:
    """argparse type: a birth year from 1900 to this year."""
    return int_between(OLDEST_BIRTH_YEAR, _today().year)(text)


def _made_at(text: str) -> int:
    """argparse type: when the user made the change: ISO 8601, from 1970, not in the future."""
    at = instant_ms(text)
    if at < 0:
        raise argparse.ArgumentTypeError(f"must be 1970-01-01 or later, not {text}")
    if at > time.time() * 1000 + CLOCK_SKEW_MS:
        raise argparse.ArgumentTypeError(f"is in the future: {text}")
    return at


def _identifier(limit: int) -> Callable[[str], str]:
    """argparse type: a non-blank identifier of at most `limit` characters."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        if len(text) > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit} characters")
        return text

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the four actions and their options."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    vocab = consent_vocabulary()
    texts = {
        "grant": "grant purposes / categories / guardian consent, accept a policy version",
        "withdraw": "withdraw purposes / categories / guardian consent",
        "cancel": "cancel the account (downstream stores are told to erase)",
        "show": "print the user's current consent record as JSON",
    }
    for action, text in texts.items():
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("user_id", metavar="USER_ID", type=_identifier(MAX_ID_CHARS))
        add_connection_args(p)
        if action in ("grant", "withdraw"):
            p.add_argument(
                "--purpose",
                action="append",
                default=[],
                choices=sorted(vocab.purposes),
                help="a purpose (repeatable)",
            )
            p.add_argument(
                "--category",
                action="append",
                default=[],
                choices=sorted(vocab.categories),
                help="a sensitive data category (repeatable)",
            )
            p.add_argument("--guardian", action="store_true", help="the guardian's consent")
        if action == "grant":
            p.add_argument(
                "--policy-version",
                type=int_between(1, MAX_POLICY_VERSION),
                help="accept this policy version",
            )
            p.add_argument("--birth-date", type=_day, help="birth date YYYY-MM-DD")
            p.add_argument(
                "--birth-year", type=_birth_year, help="birth year when the date is unknown"
            )
            p.add_argument(
                "--minor",
                choices=("yes", "no"),
                help="self-declared minor status (used without birth data)",
            )
        if action != "show":
            p.add_argument(
                "--at",
                type=_made_at,
                help="when the user made the change (ISO 8601, not in the future; default now)",
            )
            p.add_argument(
                "--change-id",
                type=_identifier(MAX_CHANGE_ID_CHARS),
                help="idempotency key: sending the same change with it again applies it once "
                "(default: a fresh one; with several flags, -1, -2... are appended)",
            )
            p.add_argument(
                "--no-wait",
                action="store_true",
                help="return once Kafka took the change, without waiting for it to apply",
            )
            p.add_argument(
                "--timeout",
                type=positive_float,
                default=30.0,
                help="seconds to wait for the change to apply (30)",
            )


def _changes(args: argparse.Namespace) -> list[ConsentChange]:
    changes: list[ConsentChange] = []
    if args.action == "cancel":
        return [Cancel()]
    grant = args.action == "grant"
    if grant and args.policy_version is not None:
        changes.append(AcceptPolicy(args.policy_version))
    if grant and (args.birth_date, args.birth_year, args.minor) != (None, None, None):
        if args.birth_date and args.birth_year and args.birth_date.year != args.birth_year:
            raise UsageError("--birth-year disagrees with --birth-date")
        minor = None if args.minor is None else args.minor == "yes"
        changes.append(SetBirth(args.birth_date, args.birth_year, minor))
    for name in args.purpose:
        changes.append(GrantPurpose(name) if grant else WithdrawPurpose(name))
    for name in args.category:
        changes.append(GrantCategory(name) if grant else WithdrawCategory(name))
    if args.guardian:
        changes.append(GrantGuardian() if grant else WithdrawGuardian())
    if not changes:
        more = ", --policy-version, --birth-date, --birth-year, --minor" if grant else ""
        raise UsageError(
            f"nothing to {args.action}: give --purpose, --category or --guardian{more}"
        )
    return changes


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    if isinstance(out.get("birth_date"), date):
        out["birth_date"] = out["birth_date"].isoformat()
    return out


def run(args: argparse.Namespace) -> int:
    """Show a record, or publish the changes and wait until the consent writer applied them."""
    changes = _changes(args) if args.action != "show" else []  # mistakes before connecting
    transport = transport_from_args(args)
    topics = topics_from_args(args)
    if args.action == "show":
        found, record = read_consent(transport, topics, args.user_id)
        if not found:
            print(f"no consent record for this user on {topics.name('consent')}", file=sys.stderr)
            return 1
        print(
            json.dumps(
                _jsonable(record) if record else {"deleted": True}, sort_keys=True, default=str
            )
        )
        return 0
    at = args.at if args.at is not None else int(time.time() * 1000)
    ids: list[str | None] = [None] * len(changes)
    if args.change_id:
        ids = (
            [args.change_id]
            if len(changes) == 1
            else [f"{args.change_id}-{n}" for n in range(1, len(changes) + 1)]
        )
    with ConsentClient(transport, topics) as client:
        try:
            receipts = [
                client.record(args.user_id, change, at, change_id)
                for change, change_id in zip(changes, ids, strict=True)
            ]
        except ConsentgateError as exc:  # a change the schema refuses: the caller's mistake
            if isinstance(exc, TransportError):
                raise
            raise UsageError(str(exc)) from None
        if args.no_wait:
            print(
                f"consent {args.action}: {len(receipts)} change(s) published to "
                f"{topics.name('consent_changes')}",
                file=sys.stderr,
            )
            return 0
        records = client.wait(receipts, args.timeout)
    record = records.get(args.user_id)
    version = "deleted" if record is None else f"version {record['version']}"
    print(
        f"consent {args.action}: {len(receipts)} change(s) applied; record {version}",
        file=sys.stderr,
    )
    return 0
