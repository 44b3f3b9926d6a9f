"""`python -m benchmarks.privacy_report` (`make privacy-report`): what analysts get, at what risk.

Simulated fleet traffic (by default 2,000 users at 1,000 events/s for 180 s, k = 10,
δ = 60 s) goes through the pipeline, and everything an analyst can read of the result
is measured against the input with `benchmarks.privacy_oracle`, which shares no code
with the pipeline:

- privacy: records whose whole visible content (every field but anon_id, the headers,
  the key and the Kafka timestamp) could have come from fewer than k distinct persons;
- suppression, and utility: located records keeping geohash precision 5 / 4 / 3, records
  keeping brand, model and OS, the median relative error of COUNT queries at selectivity
  0.05 or more against the consented input;
- the hold (time in the k-anonymity window) and, live, the latency without it.

Every consent record is published before the events (the oracle judges each event by
its user's final consent record, as the pipeline then does).

Modes: live (default) starts a private broker and real `consentgate run` workers and
publishes the events in real time; `--in-process` runs the same stages (consent gate,
anonymizer, k-anonymity window) in this process on a simulated clock, so minutes of
traffic take seconds, which is what `--sweep` uses to show how k and δ move the figures.
Writes benchmarks/results/privacy.json (or --out) and prints a table.

The runs themselves are in `benchmarks.privacy_runs`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.privacy_oracle import Index
from benchmarks.privacy_runs import Outcome, Traffic, run_in_process, run_live, traffic
from benchmarks.privacy_utility import utility

RESULTS = Path(__file__).resolve().parent / "results" / "privacy.json"
DAY_OF_REPORT = 1_795_996_800_000
"""2026-11-30T00:00Z: in-process runs at given hours of the day start on this day."""


def measure(data: Traffic, out: Outcome, k: int, min_policy: int = 1) -> dict[str, Any]:
    """Privacy and utility of one outcome, against the input."""
    truth = data.candidates(min_policy)
    index = Index(truth)
    contents: dict[tuple[Any, ...], tuple[str, dict[str, Any], int]] = {}
    per_content: Counter[tuple[Any, ...]] = Counter()
    actual: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    stamp_mismatch = 0
    for i, (schema, record, stamp) in enumerate(out.released):
        key = (schema, stamp, tuple(sorted(record.items(), key=lambda kv: kv[0])))
        contents.setdefault(key, (schema, record, stamp))
        per_content[key] += 1
        stamp_mismatch += stamp != record["event_hour"]
        if out.persons:
            actual[key].add(out.persons[i])
    under = 0
    for key, (schema, record, _stamp) in contents.items():
        if index.persons_behind(schema, record, k) < k:
            under += per_content[key]
    under_actual = sum(per_content[key] for key, p in actual.items() if len(p) < k)
    found = utility([(s, r) for s, r, _t in out.released], truth)
    hold = sorted(out.hold_ms)
    return {
        "events": len(data.events),
        "consented_by_oracle": len(truth),
        "consented_by_pipeline": out.consented,
        "released": len(out.released),
        "distinct_contents": len(contents),
        "under_k_from_input": under,
        "under_k_actual_persons": under_actual if out.persons else None,
        "timestamp_not_the_released_time": stamp_mismatch,
        "keys": out.keys,
        "header_sets_per_schema": {s: len(h) for s, h in out.headers.items()},
        "suppression": out.suppressed / max(out.consented, 1),
        "located": found.located,
        "geohash_at_least": {str(p): v for p, v in found.geohash_at_least.items()},
        "kept": found.kept,
        "count_error_median": found.count_error_median,
        "count_queries": found.count_queries,
        "count_error_by_query": found.count_error_by_query,
        "hold_s": ({"p50": hold[len(hold) // 2] / 1000, "max": hold[-1] / 1000} if hold else None),
        "grouping_us_per_record": out.grouping_us_per_record,
        "latency_s": out.latency_s,
        "load_per_worker": out.load,
    }


def _row(label: str, m: Mapping[str, Any]) -> str:
    geo = m["geohash_at_least"]
    error = m["count_error_median"]
    return (
        f"{label:<26} {m['under_k_from_input']:>6} {100 * m['suppression']:>6.1f} "
        f"{100 * geo['5']:>5.1f} {100 * geo['4']:>5.1f} {100 * geo['3']:>5.1f} "
        f"{100 * m['kept']['brand']:>6.1f} {100 * m['kept']['model']:>6.1f} "
        f"{100 * m['kept']['os_name']:>5.1f} {100 * m['kept']['hour']:>5.1f} "
        f"{'-' if error is None else f'{100 * error:.1f}':>6} {m['count_queries']:>4}"
    )


HEADER = (
    f"{'run':<26} {'<k':>6} {'supp%':>6} {'gh5%':>5} {'gh4%':>5} {'gh3%':>5} "
    f"{'brand%':>6} {'model%':>6} {'OS%':>5} {'hour%':>5} {'cnt%':>6} {'qs':>4}"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; print a table and write the JSON results."""
    parser = argparse.ArgumentParser(prog="benchmarks.privacy_report", description=__doc__)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=180.0, help="seconds of traffic")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--delay", type=float, default=60.0, help="δ, the hold bound (s)")
    parser.add_argument("--workers", type=int, nargs="*", default=[1], help="live worker counts")
    parser.add_argument("--client", default="kafka-python", choices=["kafka-python", "confluent"])
    parser.add_argument("--in-process", action="store_true", help="simulated clock, no broker")
    parser.add_argument("--sweep", action="store_true", help="in-process over k and δ")
    parser.add_argument(
        "--day-hours",
        type=int,
        nargs="*",
        default=None,
        help="in-process, the traffic starting at these UTC hours of 2026-11-30",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start_ms = int(time.time() * 1000)
    data = traffic(args.seed, args.users, args.rate, args.seconds, start_ms)
    runs: dict[str, Any] = {}
    print(HEADER)
    if args.day_hours:
        for hour in args.day_hours:
            start = DAY_OF_REPORT + hour * 3_600_000 + 10 * 60_000
            day = traffic(args.seed, args.users, args.rate, args.seconds, start)
            label = f"in-process from {hour:02d}:10 UTC"
            outcome = run_in_process(day, args.k, int(args.delay * 1000))
            runs[label] = measure(day, outcome, args.k)
            print(_row(label, runs[label]), flush=True)
    elif args.in_process and not args.sweep:
        for count in args.workers:
            for grouping in ("local", "repartition") if count > 1 else ("local",):
                label = f"in-process x{count} {grouping}"
                outcome = run_in_process(
                    data, args.k, int(args.delay * 1000), workers=count, grouping=grouping
                )
                runs[label] = measure(data, outcome, args.k)
                print(_row(label, runs[label]), outcome.load, flush=True)
    elif args.sweep:
        grid = [(args.k, args.delay)]
        if args.sweep:
            grid = [(k, d) for k in (5, 10, 20) for d in (15.0, 30.0, 60.0, 120.0)]
        for k, delay in grid:
            label = f"in-process k={k} δ={delay:g}s"
            runs[label] = measure(data, run_in_process(data, k, int(delay * 1000)), k)
            print(_row(label, runs[label]), flush=True)
    else:
        for count in args.workers:
            label = f"live {args.client} x{count}"
            with tempfile.TemporaryDirectory(prefix="consentgate-privacy-") as tmp:
                delay_ms = int(args.delay * 1000)
                outcome = run_live(data, args.k, delay_ms, count, args.client, Path(tmp))
            runs[label] = measure(data, outcome, args.k)
            print(_row(label, runs[label]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    args.out.write_text(json.dumps({"settings": settings, "runs": runs}, indent=2, default=str))
    print(f"results: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
