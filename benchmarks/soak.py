"""`python -m benchmarks.soak --minutes 10`: is the worker's memory flat under steady load?

One private broker, one worker (exactly-once, kafka-python unless --client), the
simulated workload published at a steady rate for the whole run (re-sent in a
cycle, 2 % probes to the dead-letter topic as in the latency scenario). The
worker's RSS is sampled every few seconds; the first minute is warm-up. Writes
benchmarks/results/soak.json: samples, steady min / max, spread in percent
(target: within ±10 %), and whether the worker kept up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.latency import publish_paced
from benchmarks.machine import load_average
from benchmarks.pipeline import MAX_DELAY_S
from benchmarks.run import RESULTS_DIR, _start_broker
from benchmarks.workers import input_partitions, start_workers, wait_assigned
from benchmarks.workload import fast_transport, generate, prepare_prefix
from ingest.local_broker.broker import LocalBroker
from ingest.metrics_text import metric_sum

SAMPLE_EVERY_S = 5.0
WARM_UP_S = 60.0


def soak(minutes: float, rate: float, client: str, events: int) -> dict[str, Any]:
    """Run the soak; the result dictionary written to soak.json."""
    tmp = Path(tempfile.mkdtemp(prefix="consentgate-soak-"))
    broker = LocalBroker(tmp / "broker", heap_mb=768)
    try:
        bootstrap = _start_broker(broker)
        loader = fast_transport(bootstrap)
        work = generate(events)
        topics = prepare_prefix(loader, "soak.", work, with_events=False)
        extra = ["--max-delay", str(MAX_DELAY_S), "--client", client]
        workers = start_workers(bootstrap, "soak.", 1, tmp, group="soak", extra=extra)
        worker = workers[0]
        try:
            wait_assigned(workers, input_partitions(topics, extra))
            sent: list[int] = []
            duration = minutes * 60
            publisher = threading.Thread(
                target=lambda: sent.append(publish_paced(loader, topics, work, rate, duration)[0]),
                daemon=True,
            )
            began = time.monotonic()
            publisher.start()
            samples: list[tuple[float, float]] = []
            while publisher.is_alive():
                time.sleep(SAMPLE_EVERY_S)
                worker.sample_rss()
                samples.append((round(time.monotonic() - began, 1), worker.rss[-1]))
            publisher.join()
            time.sleep(5)
            consumed = metric_sum(worker.scrape(), "consentgate_consumed_total")
        finally:
            worker.stop()
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    steady = [rss for t, rss in samples if t >= WARM_UP_S] or [rss for _t, rss in samples]
    low, high = min(steady), max(steady)
    return {
        "minutes": minutes,
        "rate_eps": rate,
        "client": client,
        "published": sent[0] if sent else None,
        "consumed": consumed,
        "kept_up": bool(sent and consumed >= sent[0]),
        "rss_samples_mb": samples,
        "steady_min_mb": low,
        "steady_max_mb": high,
        "spread_pct": round((high - low) * 100 / low, 1),
        "load_average_at_end": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, soak, write results/soak.json."""
    parser = argparse.ArgumentParser(prog="benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=2_000.0, help="events per second")
    parser.add_argument("--client", default="kafka-python", choices=("kafka-python", "confluent"))
    parser.add_argument("--events", type=int, default=60_000, help="distinct events cycled")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    result = soak(args.minutes, args.rate, args.client, args.events)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"soak: RSS {result['steady_min_mb']}-{result['steady_max_mb']} MiB "
        f"(spread {result['spread_pct']} %), kept up: {result['kept_up']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
