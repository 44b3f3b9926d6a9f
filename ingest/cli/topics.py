"""`consentgate topics create|check|list`: the topic set on the cluster, idempotently."""

from __future__ import annotations

import argparse
import sys

from ingest.cli.arguments import int_between, positive_int
from ingest.cli.connection import add_connection_args, topics_from_args, transport_from_args
from ingest.kafka.acl import load_acls
from ingest.kafka.topics import ROLES, drift, load_topic_set

NAME = "topics"
HELP = "create, check or list the pipeline's topics"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the create / check / list subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, text in (
        ("create", "create missing topics (running it again changes nothing)"),
        ("check", "report drift from the topic file; exit 1 if any"),
        ("list", "print the topic names, one per line"),
        ("acls", "apply the ACLs of deploy/acl/acls.toml (needs a super user)"),
    ):
        p = sub.add_parser(action, help=text, description=text)
        add_connection_args(p)
        if action in ("create", "check"):
            p.add_argument("--partitions", type=positive_int, help="override partitions")
            p.add_argument(
                "--replication",
                type=int_between(1, 32767),  # Kafka's replication factor is a 16-bit count
                help="override replication factor",
            )


def run(args: argparse.Namespace) -> int:
    """Run one topics action."""
    if args.action == "list":
        for name in (topics_from_args(args).specs[r].name for r in ROLES):
            print(name)
        return 0
    if args.action == "acls":
        acls = load_acls(prefix=topics_from_args(args).prefix)
        acl_admin = transport_from_args(args).admin()
        try:
            acl_admin.create_acls(acls)
        finally:
            acl_admin.close()
        print(f"acls: {len(acls)} rules applied", file=sys.stderr)
        return 0
    topic_set = load_topic_set(
        prefix=args.prefix, partitions=args.partitions, replication=args.replication
    )
    admin = transport_from_args(args).admin()
    try:
        specs = [topic_set.specs[r] for r in ROLES]
        if args.action == "create":
            created = admin.create_topics(specs)
            for spec in specs:
                state = "created" if created.get(spec.name) else "exists"
                print(f"{state:8} {spec.name}", file=sys.stderr)
            print(
                f"topics: {sum(created.values())} created, "
                f"{len(specs) - sum(created.values())} already present",
                file=sys.stderr,
            )
        found = admin.describe_topics(s.name for s in specs)
        problems = [p for s in specs for p in drift(s, found.get(s.name))]
    finally:
        admin.close()
    for line in problems:
        print(f"drift: {line}")
    if args.action == "check" and not problems:
        print(f"topics: all {len(specs)} match", file=sys.stderr)
    return 1 if problems else 0
