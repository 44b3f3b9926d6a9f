"""`consentgate run`: the pipeline, one worker per process (`--workers N` starts N)."""

from __future__ import annotations

import argparse
import faulthandler
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ingest.cli.arguments import (
    check_port_range,
    non_negative_float,
    non_negative_int,
    port_or_any,
    positive_int,
)
from ingest.cli.connection import add_connection_args, settings_from_args, topics_from_args
from ingest.errors import ConfigError, UsageError
from ingest.kafka import make_transport
from ingest.kafka.config import load_settings

if TYPE_CHECKING:
    from consumers.settings import PipelineSettings

NAME = "run"
HELP = "run the consent pipeline (tag, gate, anonymize, route) exactly once"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add worker options; every one also has a CONSENTGATE_* environment variable."""
    add_connection_args(parser)
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="worker processes (default 1)"
    )
    parser.add_argument("--worker-index", type=non_negative_int, help=argparse.SUPPRESS)
    parser.add_argument("--group", help="consumer group id (default consentgate-pipeline)")
    parser.add_argument("--k", type=int, help="k-anonymity: distinct persons per group (10)")
    parser.add_argument(
        "--max-delay",
        type=non_negative_float,
        metavar="SECONDS",
        help="k-anonymity hold limit (60)",
    )
    parser.add_argument("--commit-interval-ms", type=int, help="transaction interval (500)")
    parser.add_argument("--min-policy-version", type=int, help="oldest accepted policy (1)")
    parser.add_argument("--guardian-age", type=int, help="guardian consent below this age (14)")
    parser.add_argument("--sink-bootstrap", help="output cluster, if not the source cluster")
    parser.add_argument(
        "--kanon-grouping",
        choices=("repartition", "local"),
        help="group held records by region across workers (repartition, the default), or "
        "per worker on its own raw partitions (local: one worker owning them all)",
    )
    parser.add_argument(
        "--metrics-port",
        type=port_or_any,
        help="first metrics port; worker i uses port+i; 0 for any free port (9400)",
    )
    parser.add_argument("--policy", help="anonymization policy file (the shipped one)")
    parser.add_argument(
        "--at-least-once",
        action="store_true",
        help="no transactions (benchmark comparison only: outputs may repeat after a crash)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: allow the built-in k-anonymity person key (never in production)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))


def run(args: argparse.Namespace) -> int:
    """Start one worker here, or N child processes; bad settings stop before either."""
    if args.workers > 1 and args.worker_index is None:
        settings = _pipeline_settings(args, 0)  # one message here, not one per child
        check_port_range("--metrics-port", settings.metrics_port, args.workers)
        return _supervise(args)
    return _run_worker(args)


def _pipeline_settings(args: argparse.Namespace, index: int | None) -> PipelineSettings:
    """The worker's settings from environment and flags; a bad value is a ConfigError.

    `index` None leaves the worker index to CONSENTGATE_WORKER_INDEX (default 0).
    """
    from consumers.anonymization_config import PolicyError, load_policy
    from consumers.settings import load_pipeline_settings

    if args.policy is not None:
        policy = Path(args.policy)
        if not policy.is_file():
            raise UsageError(f"--policy: no such file: {args.policy}")
        try:
            load_policy(policy)
        except PolicyError as exc:
            raise ConfigError(str(exc)) from None
    return load_pipeline_settings(
        worker_index=index,
        group_id=args.group,
        k=args.k,
        kanon_max_delay_ms=None if args.max_delay is None else int(args.max_delay * 1000),
        commit_interval_ms=args.commit_interval_ms,
        min_policy_version=args.min_policy_version,
        guardian_age=args.guardian_age,
        sink_bootstrap_servers=args.sink_bootstrap,
        kanon_grouping=args.kanon_grouping,
        metrics_port=args.metrics_port,
        anonymization_policy=args.policy,
        exactly_once=False if args.at_least_once else None,
        demo_mode=True if args.demo else None,
    )


def worker_settings(args: argparse.Namespace) -> PipelineSettings:
    """One worker's settings; its index from --worker-index, else CONSENTGATE_WORKER_INDEX
    (the deploy files set it), else 0: each worker has its own transactional id."""
    return _pipeline_settings(args, args.worker_index)


def _run_worker(args: argparse.Namespace) -> int:
    from consumers.logs import configure_logging
    from consumers.worker import Worker

    settings = worker_settings(args)  # a mistake is the CLI's one line, not a log
    configure_logging(args.log_level, worker=settings.worker_index)
    topics = topics_from_args(args)
    # Consumer groups carry the topic prefix like topics and transactional ids (see ACLs).
    settings.group_id = topics.prefix + settings.group_id
    kafka = settings_from_args(args)
    source = make_transport(kafka)
    sink = None
    if settings.sink_bootstrap_servers:
        sink = make_transport(
            load_settings(bootstrap_servers=settings.sink_bootstrap_servers, client=kafka.client)
        )
    worker = Worker(source, topics, settings, sink=sink, settle_heap=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # `kill -USR1` prints every thread's stack to stderr: files, lines and functions,
    # never a value, so a worker that hangs can say where without a debugger.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return worker.run()


def _supervise(args: argparse.Namespace) -> int:
    """Start N workers as child processes; forward SIGTERM/SIGINT; wait for all."""
    argv = [a for a in sys.argv[1:]]
    children: list[subprocess.Popen[bytes]] = []
    base = [sys.executable, "-m", "ingest.cli.main", *_without_workers(argv)]
    for index in range(args.workers):
        children.append(subprocess.Popen([*base, "--worker-index", str(index)]))
    print(f"started {args.workers} workers", file=sys.stderr)

    def _forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    codes = []
    for child in children:
        while True:
            try:
                codes.append(child.wait())
                break
            except KeyboardInterrupt:  # pragma: no cover - signal already forwarded
                time.sleep(0.1)
    return max(codes)


def _without_workers(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out
