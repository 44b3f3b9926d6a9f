"""Command-line options shared by every command that talks to Kafka."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ingest.kafka import Transport, make_transport
from ingest.kafka.config import KafkaSettings, load_settings
from ingest.kafka.topics import TopicSet, load_topic_set


def instant_ms(text: str) -> int:
    """argparse type: an ISO 8601 time (UTC if it has no offset) as epoch milliseconds."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def add_connection_args(parser: argparse.ArgumentParser, topics: bool = True) -> None:
    """Add --bootstrap, --client and (optionally) --prefix."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: $CONSENTGATE_BOOTSTRAP_SERVERS, "
        "$KAFKA_BOOTSTRAP_SERVERS, or the running local broker)",
    )
    group.add_argument(
        "--client",
        choices=("kafka-python", "confluent"),
        help="Kafka client library (default: $CONSENTGATE_CLIENT or kafka-python)",
    )
    if topics:
        group.add_argument(
            "--prefix",
            metavar="PREFIX",
            help="topic name prefix (default: $CONSENTGATE_TOPIC_PREFIX or none)",
        )


def settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    """Kafka settings from the environment, overridden by command-line options."""
    settings = load_settings(bootstrap_servers=args.bootstrap, client=args.client)
    settings.bootstrap_servers = settings.require_bootstrap()
    return settings


def transport_from_args(args: argparse.Namespace) -> Transport:
    """The configured transport for this command's cluster."""
    return make_transport(settings_from_args(args))


def topics_from_args(args: argparse.Namespace) -> TopicSet:
    """The topic set with this command's prefix."""
    return load_topic_set(prefix=getattr(args, "prefix", None))
