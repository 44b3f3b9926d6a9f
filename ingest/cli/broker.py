"""`consentgate broker start|stop|status`: the local development Kafka broker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingest.cli.arguments import port
from ingest.local_broker.broker import LocalBroker

NAME = "broker"
HELP = "start, stop or check the local development Kafka broker (official jars, one KRaft node)"


def default_run_dir() -> Path:
    """`$CONSENTGATE_RUN_DIR` or `./.run/broker`."""
    return Path(os.environ.get("CONSENTGATE_RUN_DIR") or Path(".run") / "broker")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the start / stop / status subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, text in (
        ("start", "start the broker (or find it running); print its bootstrap address"),
        ("stop", "stop the broker of the run folder"),
        ("status", "print the bootstrap address; exit 1 when the broker is not running"),
    ):
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument(
            "--run-dir",
            type=Path,
            default=None,
            help="folder for config, data, logs and state "
            "(default: $CONSENTGATE_RUN_DIR or ./.run/broker)",
        )
        if action == "start":
            p.add_argument("--port", type=port, help="client port (default: a free one)")
            p.add_argument(
                "--rack", default="cn-north-1a", help="broker.rack (default: %(default)s)"
            )


def run(args: argparse.Namespace) -> int:
    """Run one broker action; the bootstrap address alone goes to stdout."""
    run_dir: Path = args.run_dir or default_run_dir()
    if args.action == "start":
        broker = LocalBroker(run_dir, port=args.port, rack=args.rack)
        print(f"starting the local Kafka broker in {broker.run_dir} ...", file=sys.stderr)
        bootstrap = broker.start()
        print(f"broker ready; log: {broker.log_file}", file=sys.stderr)
        print(bootstrap)
        return 0
    broker = LocalBroker(run_dir)
    if args.action == "stop":
        stopped = broker.stop()
        print("broker stopped" if stopped else "no broker was running", file=sys.stderr)
        return 0
    state = broker.status()
    if not state.running:
        detail = f" (pid {state.pid} is up but not answering)" if state.pid else ""
        print(f"broker not running in {broker.run_dir}{detail}", file=sys.stderr)
        return 1
    print(state.bootstrap)
    return 0
