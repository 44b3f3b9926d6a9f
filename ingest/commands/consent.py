"""`consentgate consent grant|withdraw|cancel|show`: a user's consent on the consent topic."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from typing import Any

from consumers.consent_table import (
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
    apply_change,
)
from ingest.commands.connection import (
    add_connection_args,
    instant_ms,
    topics_from_args,
    transport_from_args,
)
from ingest.consent_store import read_consent
from ingest.errors import UsageError
from ingest.publisher import Publisher
from schemas.errors import ConsentgateError
from schemas.fields import consent_vocabulary

NAME = "consent"
HELP = "grant, withdraw, cancel or show a user's consent record"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


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
        p.add_argument("user_id", metavar="USER_ID")
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
            p.add_argument("--policy-version", type=int, help="accept this policy version")
            p.add_argument("--birth-date", type=_day, help="birth date YYYY-MM-DD")
            p.add_argument("--birth-year", type=int, help="birth year when the date is unknown")
            p.add_argument(
                "--minor",
                choices=("yes", "no"),
                help="self-declared minor status (used without birth data)",
            )
        if action != "show":
            p.add_argument(
                "--at",
                type=instant_ms,
                help="when the user made the change (ISO 8601; default now)",
            )


def _changes(args: argparse.Namespace) -> list[ConsentChange]:
    changes: list[ConsentChange] = []
    if args.action == "cancel":
        return [Cancel()]
    grant = args.action == "grant"
    if grant and args.policy_version is not None:
        changes.append(AcceptPolicy(args.policy_version))
    if grant and (args.birth_date or args.birth_year or args.minor):
        minor = None if args.minor is None else args.minor == "yes"
        changes.append(SetBirth(args.birth_date, args.birth_year, minor))
    for name in args.purpose:
        changes.append(GrantPurpose(name) if grant else WithdrawPurpose(name))
    for name in args.category:
        changes.append(GrantCategory(name) if grant else WithdrawCategory(name))
    if args.guardian:
        changes.append(GrantGuardian() if grant else WithdrawGuardian())
    if not changes:
        raise UsageError(f"nothing to {args.action}: give --purpose, --category or --guardian")
    return changes


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    if isinstance(out.get("birth_date"), date):
        out["birth_date"] = out["birth_date"].isoformat()
    return out


def run(args: argparse.Namespace) -> int:
    """Fold the change into the user's latest record and publish the new full record."""
    transport = transport_from_args(args)
    topics = topics_from_args(args)
    found, record = read_consent(transport, topics, args.user_id)
    if args.action == "show":
        if not found:
            print(f"no consent record for this user on {topics.name('consent')}", file=sys.stderr)
            return 1
        print(json.dumps(_jsonable(record) if record else {"deleted": True}, sort_keys=True))
        return 0
    if found and record is None:
        raise UsageError("this account's consent record was deleted (cancelled)")
    at = args.at if args.at is not None else int(time.time() * 1000)
    try:
        for change in _changes(args):
            record = apply_change(record, change, at, user_id=args.user_id)
    except ConsentgateError as exc:
        raise UsageError(str(exc)) from None
    assert record is not None
    with Publisher(transport, topics) as publisher:
        publisher.publish_consent(record)
    print(
        f"consent {args.action}: record version {record['version']} written to "
        f"{topics.name('consent')}",
        file=sys.stderr,
    )
    return 0
