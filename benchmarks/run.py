"""`python -m benchmarks.run`: every scenario on one private broker; writes benchmarks/results/.

Order: broker up → simulate and encode the workload once → pipeline scenarios
(kafka-python 1 and 2 processes exactly-once, at-least-once, confluent) →
passthrough ceilings on the first scenario's input → the Quix Streams peer →
latency at half the measured rate → stage costs and profile (in-process) →
results. A scenario that fails records its error and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import latency, peer, report, stages
from benchmarks.machine import facts, load_average
from benchmarks.pipeline import MAX_DELAY_S, run_pipeline
from benchmarks.workers import REPO_ROOT
from benchmarks.workload import create_topics, fast_transport, generate, prepare_prefix
from consumers.settings import PipelineSettings
from ingest.errors import BrokerError
from ingest.local_broker.broker import LocalBroker
from ingest.local_broker.jars import kafka_version

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_EVENTS = 60_000
# `make bench` must end within 10 minutes: later scenarios are skipped past this point.
BUDGET_S = 540.0


def _passthrough(bootstrap: str, prefix: str, client: str, events: int) -> dict[str, Any]:
    out = f"{prefix}bench.passthrough-{client}"
    create_topics(fast_transport(bootstrap), _topics(prefix), extra=[out])
    cmd = [
        sys.executable, "-m", "benchmarks.passthrough", "--bootstrap", bootstrap,
        "--client", client, "--prefix", prefix, "--out", out, "--events", str(events),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"passthrough failed: {done.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _code_version() -> dict[str, Any]:
    """The commit measured and how many files differed from it (read-only git calls)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
        return done.stdout.strip()

    changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD") or None, "uncommitted_files": len(changed)}


def _start_broker(broker: LocalBroker, attempts: int = 3) -> str:
    """Start the private broker, retrying (a free port can be taken by another job meanwhile)."""
    for attempt in range(1, attempts + 1):
        try:
            return broker.start()
        except BrokerError:
            if attempt == attempts:
                raise
            print(f"bench: broker start failed (attempt {attempt}); retrying", file=sys.stderr)
            broker.stop()
    raise AssertionError("unreachable")


def _topics(prefix: str) -> Any:
    from ingest.kafka.topics import load_topic_set

    return load_topic_set(prefix=prefix)


def _confluent_available() -> str | None:
    """None when the confluent transport can be used, else why not."""
    import importlib.util

    if importlib.util.find_spec("confluent_kafka") is None:
        return "confluent-kafka is not installed (pip install 'consentgate[librdkafka]')"
    if importlib.util.find_spec("ingest.kafka.confluent") is None:
        return "ingest/kafka/confluent.py does not exist yet"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write results/latest.json and results/latest.md."""
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="raw events per run")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder")
    parser.add_argument(
        "--budget", type=float, default=BUDGET_S, help="skip scenarios not started by then (s)"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="consentgate-bench-"))
    logs = tmp / "logs"
    logs.mkdir()
    broker = LocalBroker(tmp / "broker", heap_mb=768)
    result: dict[str, Any] = {"errors": {}, "skipped": {}}
    try:
        bootstrap = _start_broker(broker)
        result["machine"] = facts(kafka_version())
        result["code"] = _code_version()
        print(f"bench: broker at {bootstrap}, run folder {tmp}", file=sys.stderr)
        work = generate(args.events)
        print(
            f"bench: {len(work.events)} events, {len(work.consents)} consent records "
            f"simulated and encoded in {work.generate_s:.1f} s",
            file=sys.stderr,
        )
        result["workload"] = {
            "events": len(work.events),
            "counts": work.counts(),
            "value_bytes_mean": work.sizes(),
            "generate_s": round(work.generate_s, 1),
        }
        defaults = PipelineSettings(demo_mode=True)
        result["settings"] = {
            "commit_interval_ms": defaults.commit_interval_ms,
            "max_poll_records": defaults.max_poll_records,
            "commit_max_records": defaults.commit_max_records,
            "k": defaults.k,
            "kanon_max_delay_ms_in_bench": int(MAX_DELAY_S * 1000),
            "kanon_max_delay_ms_in_latency_run": int(latency.LATENCY_MAX_DELAY_S * 1000),
            "raw_partitions": 6,
            "worker_linger_ms": 5,
        }
        loader = fast_transport(bootstrap)
        scenarios: dict[str, Any] = {}
        result["scenarios"] = scenarios
        confluent_missing = _confluent_available()

        def step(name: str, fn: Callable[[], Any]) -> None:
            if args.only is not None and name not in args.only:
                return
            if time.monotonic() - began > args.budget:
                result["skipped"][name] = f"time budget of {args.budget:g} s used up"
                return
            t = time.monotonic()
            print(f"bench: {name} ...", file=sys.stderr)
            try:
                scenarios[name] = fn()
                scenarios[name]["load_average"] = load_average()
            except Exception as exc:
                result["errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
                traceback.print_exc()
            print(f"bench: {name} done in {time.monotonic() - t:.0f} s", file=sys.stderr)

        n = len(work.events)
        step("pipeline_1", lambda: run_pipeline(loader, bootstrap, work, "p1.", logs))
        step("pipeline_2", lambda: run_pipeline(loader, bootstrap, work, "p2.", logs, processes=2))
        step(
            "pipeline_1_alos",
            lambda: run_pipeline(loader, bootstrap, work, "a1.", logs, extra=["--at-least-once"]),
        )
        # The repartition hop (grouping across workers), measured against local grouping.
        local = ["--kanon-grouping", "local"]
        step(
            "pipeline_1_local",
            lambda: run_pipeline(loader, bootstrap, work, "l1.", logs, extra=local),
        )
        if confluent_missing:
            result["skipped"]["pipeline_1_confluent_local"] = confluent_missing
        else:
            step(
                "pipeline_1_confluent_local",
                lambda: run_pipeline(
                    loader, bootstrap, work, "cl.", logs, extra=["--client", "confluent", *local]
                ),
            )
        if confluent_missing:
            result["skipped"]["pipeline_1_confluent"] = confluent_missing
            result["skipped"]["passthrough_confluent"] = confluent_missing
        else:
            step(
                "pipeline_1_confluent",
                lambda: run_pipeline(
                    loader, bootstrap, work, "c1.", logs, extra=["--client", "confluent"]
                ),
            )

        def source() -> str:
            """The pipeline_1 input when it was loaded, else a freshly loaded copy."""
            if "pipeline_1" in scenarios:
                return "p1."
            if "pt." not in loaded:
                prepare_prefix(loader, "pt.", work)
                loaded.add("pt.")
            return "pt."

        loaded: set[str] = set()
        step("passthrough", lambda: _passthrough(bootstrap, source(), "kafka-python", n))
        if not confluent_missing:
            step("passthrough_confluent", lambda: _passthrough(bootstrap, source(), "confluent", n))
        step("peer_quix", lambda: peer.run_quix(bootstrap, work, "q1.", tmp))
        rate = scenarios.get("pipeline_1", {}).get("eps") or 10_000
        step("latency", lambda: latency.run_latency(loader, bootstrap, work, "lt.", logs, rate))
        step("stages", lambda: stages.run_stages(loader, bootstrap, work, "st."))
        if "peer_quix" in result["errors"]:
            result["skipped"]["peer_quix"] = result["errors"].pop("peer_quix")
    finally:
        broker.stop()
        result["elapsed_s"] = round(time.monotonic() - began, 1)
        result["load_average_at_end"] = load_average()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    report.write(result, args.out)
    print(f"bench: results in {args.out} ({result['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
