"""The ceiling: consume raw bytes and produce them unchanged, transactionally, like the worker.

Run as a subprocess: `python -m benchmarks.passthrough --bootstrap B --prefix P --out T
--events N [--client confluent]`. Same transport, producer and consumer options, commit
interval and poll size as the worker; prints one JSON line with the rate and CPU cost.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from consumers.settings import PipelineSettings
from ingest.kafka import ConsumerOptions, ProducerOptions, TopicPartition, make_transport
from ingest.kafka.config import KafkaSettings
from ingest.kafka.topics import load_topic_set


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_loop(
    bootstrap: str, client: str, prefix: str, out_topic: str, events: int, exactly_once: bool
) -> dict[str, float | int | str]:
    """Copy `events` raw records to `out_topic`; measure from the first non-empty poll."""
    defaults = PipelineSettings(demo_mode=True)
    transport = make_transport(KafkaSettings(bootstrap_servers=bootstrap, client=client))
    topics = load_topic_set(prefix=prefix)
    group = f"{prefix}passthrough-{client}"
    producer = transport.producer(
        ProducerOptions(
            transactional_id=f"{group}-tx" if exactly_once else None,
            linger_ms=5,
            batch_size=1024 * 1024,
        )
    )
    if exactly_once:
        producer.init_transactions()
    consumer = transport.consumer(
        ConsumerOptions(
            group_id=group,
            read_committed=True,
            max_poll_records=defaults.max_poll_records,
            fetch_max_wait_ms=min(100, defaults.poll_timeout_ms),
        )
    )
    consumer.subscribe([topics.name("raw_device"), topics.name("raw_log")])
    interval = defaults.commit_interval_ms / 1000
    poll_timeout = defaults.poll_timeout_ms / 1000
    done = 0
    first_t = first_cpu = 0.0
    in_txn = False
    started = time.monotonic()
    offsets: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + 300
    while done < events and time.monotonic() < deadline:
        messages = consumer.poll(defaults.max_poll_records, poll_timeout)
        if messages and not first_t:
            first_t, first_cpu = time.monotonic(), _cpu_s()
        if messages and not in_txn:
            if exactly_once:
                producer.begin_transaction()
            in_txn, started = True, time.monotonic()
        for msg in messages:
            producer.send(
                f"{out_topic}", msg.value, key=msg.key, headers=msg.headers, partition=msg.partition
            )
            offsets[TopicPartition(msg.topic, msg.partition)] = msg.offset + 1
        done += len(messages)
        if in_txn and (time.monotonic() - started >= interval or done >= events):
            if exactly_once:
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                producer.commit_transaction()
            else:
                producer.flush(30)
                consumer.commit(offsets)
            in_txn = False
    elapsed = time.monotonic() - first_t if first_t else 0.0
    cpu = _cpu_s() - first_cpu
    consumer.close()
    producer.close(10)
    return {
        "client": client,
        "exactly_once": int(exactly_once),
        "records": done,
        "seconds": round(elapsed, 3),
        "eps": round(done / elapsed) if elapsed else 0,
        "cpu_us_per_record": round(cpu * 1e6 / done, 1) if done else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the loop, print the JSON result."""
    parser = argparse.ArgumentParser(prog="benchmarks.passthrough")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--client", default="kafka-python", choices=("kafka-python", "confluent"))
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--at-least-once", action="store_true")
    args = parser.parse_args(argv)
    result = run_loop(
        args.bootstrap, args.client, args.prefix, args.out, args.events, not args.at_least_once
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
