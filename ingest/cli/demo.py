"""`consentgate demo`: everything at once on a private local broker, then a summary."""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ingest.cli.arguments import (
    check_port_range,
    non_negative_float,
    port,
    positive_float,
    positive_int,
)
from ingest.cli.run_summary import summary_table
from ingest.cli.simulate import publish_paced
from ingest.errors import CommandError
from ingest.kafka import make_transport
from ingest.kafka.config import load_settings
from ingest.kafka.topics import ROLES, load_topic_set
from ingest.local_broker.broker import LocalBroker
from ingest.metrics_text import Samples, merge, metric_sum, parse_exposition
from ingest.sdk.publisher import Publisher
from ingest.simulator.fleet import Fleet
from ingest.simulator.simulate import Simulation

NAME = "demo"
HELP = "run broker, topics, 2 workers and the simulator on this machine, then summarize"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's knobs."""
    parser.add_argument(
        "--duration", type=positive_float, default=30.0, help="seconds of traffic (30)"
    )
    parser.add_argument(
        "--rate", type=positive_float, default=1000.0, help="events per second (1000)"
    )
    parser.add_argument("--users", type=positive_int, default=3000, help="simulated users (3000)")
    parser.add_argument("--workers", type=positive_int, default=2, help="pipeline workers (2)")
    parser.add_argument("--k", type=int, default=10, help="k-anonymity k (10)")
    parser.add_argument(
        "--max-delay",
        type=non_negative_float,
        default=15.0,
        help="k-anonymity hold limit, seconds (15)",
    )
    parser.add_argument("--metrics-port", type=port, default=9400, help="first worker port")
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (7)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the broker running and its folder in place"
    )


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _scrape(port: int) -> Samples | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return parse_exposition(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run(args: argparse.Namespace) -> int:
    """Start everything, drive traffic, drain, summarize, clean up."""
    from consumers.settings import load_pipeline_settings

    check_port_range("--metrics-port", args.metrics_port, args.workers)
    # The workers' settings, checked here: a bad --k is one line now, not a worker log later.
    load_pipeline_settings(k=args.k, kanon_max_delay_ms=int(args.max_delay * 1000), demo_mode=True)
    run_dir = Path(tempfile.mkdtemp(prefix="consentgate-demo-"))
    broker = LocalBroker(run_dir=run_dir / "broker")
    workers: subprocess.Popen[bytes] | None = None
    ports = [args.metrics_port + i for i in range(args.workers)]
    try:
        _say(f"starting a local Kafka broker in {run_dir} ...")
        bootstrap = broker.start()
        _say(f"broker ready at {bootstrap}")
        settings = load_settings(bootstrap_servers=bootstrap)
        transport = make_transport(settings)
        topics = load_topic_set(prefix="")
        admin = transport.admin()
        try:
            admin.create_topics(topics.specs[r] for r in ROLES)
        finally:
            admin.close()
        _say("topics created")
        log_path = run_dir / "workers.log"
        with log_path.open("wb") as log:
            workers = subprocess.Popen(
                [
                    sys.executable, "-m", "ingest.cli.main", "run", "--bootstrap", bootstrap,
                    "--workers", str(args.workers), "--demo", "--k", str(args.k),
                    "--max-delay", str(args.max_delay), "--metrics-port", str(args.metrics_port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while not all(_ready(p) for p in ports):
            if workers.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"pipeline workers did not become ready; see {log_path}")
            time.sleep(0.3)
        _say(
            f"{args.workers} workers ready; metrics at "
            + ", ".join(f"http://127.0.0.1:{p}/metrics" for p in ports)
        )
        start_ms = int(time.time() * 1000)
        sim = Simulation(Fleet(args.seed, args.users, start_ms))
        _say(f"simulating {args.rate:,.0f} events/s for {args.duration:.0f} s ...")
        tally = publish_paced(
            Publisher(transport, topics),
            sim.items(duration_ms=int(args.duration * 1000), rate_per_s=args.rate),
            total=int(args.duration * args.rate),
        )
        _say(f"published {tally.events:,} events and {tally.consents:,} consent records")
        samples = _drain(ports, tally.events, args.max_delay + 30)
        print("\nconsentgate demo summary\n")
        print(summary_table(samples, tally.events))
        print("\nmetrics: " + "  ".join(f"http://127.0.0.1:{p}/metrics" for p in ports))
        if args.keep:
            print(f"broker left running at {bootstrap}; folder {run_dir}")
        return 0 if tally.undelivered == 0 else 1
    finally:
        if workers is not None and workers.poll() is None:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(timeout=30)
            except subprocess.TimeoutExpired:
                workers.kill()
        if not args.keep:
            broker.stop()
            shutil.rmtree(run_dir, ignore_errors=True)


def _drain(ports: list[int], published: int, timeout_s: float) -> Samples:
    """Wait until every event is consumed and nothing is held; return the merged metrics."""
    _say("waiting for the pipeline to drain (k-anonymity holds records up to its limit) ...")
    deadline = time.monotonic() + timeout_s
    samples: Samples = {}
    while time.monotonic() < deadline:
        scrapes = [s for s in (_scrape(p) for p in ports) if s is not None]
        samples = merge(scrapes)
        consumed = metric_sum(samples, "consentgate_consumed_total")
        pending = metric_sum(samples, "consentgate_kanon_pending")
        if len(scrapes) == len(ports) and consumed >= published and pending == 0:
            break
        time.sleep(1.0)
    else:
        _say("drain timed out; the summary shows the state reached")
    return samples
