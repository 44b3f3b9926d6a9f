"""What a worker sets up before its loop: the cluster watch, the consent writer, the sink.

Start-up order (`consumers.worker.Worker.run`): metrics endpoint; cluster watch,
and no production until the sink passes the residency check; analyst topics'
partition counts; the consent table read to the end; the consent writer thread;
the sink producer and the group consumer.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from consumers.anonymization_config import load_policy
from consumers.anonymize import Anonymizer
from consumers.cluster_watch import ClusterWatch
from consumers.consent import ConsentRules
from consumers.consent_writer import ConsentWriter
from consumers.health import HealthState
from consumers.kanon import KAnonymityWindow
from consumers.pipeline import Pipeline
from consumers.release_policy import ReleasePlan
from consumers.residency import check_residency
from consumers.route import Router
from consumers.scrub import CleanTextMemo
from consumers.settings import PipelineSettings
from ingest.errors import TransportError
from ingest.kafka import Consumer, ConsumerOptions, Transport
from ingest.kafka.topics import TopicSet
from schemas.codec import Codec

log = logging.getLogger(__name__)

PARTITION_FETCH_BYTES = 256 * 1024
"""Bytes one fetch takes of a partition (a larger record still comes whole)."""
PREFETCH_BYTES = 4 * 1024 * 1024
"""Bytes the client may hold fetched ahead of the polls (about five polls of 2,000 records
of ~360 bytes): a backlog waits on the broker, where the repartition topic's records do
not queue behind it."""


YOUNG_GENERATION_OBJECTS = 20_000
"""Net new container objects that start a young-generation collection (CPython: 700)."""


def settle_heap() -> None:
    """Tune the process's cyclic garbage collector once the worker's start-up state is built.

    Everything alive now (modules, the compiled policy and codecs, the consent table
    read to its end) is moved out of the collector's sight (`gc.freeze`): it lives as
    long as the process, and every full collection used to traverse all of it again.
    The young generation is collected after 20,000 net new container objects instead
    of 700: a polled batch's records then mostly die before a collection sees them,
    instead of being promoted and traversed again by the older generations. In the
    benchmark's workers, collections took 12-16 % of the CPU with the defaults and 2-5 %
    so tuned (BENCHMARKS.md). Reference counting still frees nearly everything at once;
    the collector only finds cycles, which at most 20,000 objects' worth of wait a little
    longer. Called by `consentgate run`, not by a worker built inside another program,
    whose collector is that program's to tune.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_OBJECTS, 20, 10)


@dataclass(frozen=True, slots=True)
class Parts:
    """The pure stages of a worker, built from its settings and the anonymization policy."""

    router: Router
    plans: dict[str, ReleasePlan]
    pipeline: Pipeline
    window: KAnonymityWindow


def build_parts(settings: PipelineSettings, topics: TopicSet, codec: Codec) -> Parts:
    """Router, release plans, pipeline and k-anonymity window for one worker."""
    policy = (
        load_policy(settings.anonymization_policy)
        if settings.anonymization_policy
        else load_policy()
    )
    router = Router(codec, topics, {name: sp.output for name, sp in policy.schemas.items()})
    constants = {
        "policy_version": policy.version,
        "min_consent_policy_version": settings.min_policy_version,
    }
    plans = {
        name: ReleasePlan(name, sp.output, sp.release, constants)
        for name, sp in policy.schemas.items()
    }
    pipeline = Pipeline(
        codec,
        ConsentRules(
            min_policy_version=settings.min_policy_version,
            guardian_age=settings.guardian_age,
            missing_birth_needs_guardian=settings.missing_birth_needs_guardian,
        ),
        Anonymizer(policy, CleanTextMemo()),
        settings.person_key(),
        {topics.name("raw_device"): "device_event", topics.name("raw_log"): "log_event"},
        max_raw_bytes=settings.max_raw_record_bytes,
    )
    window = KAnonymityWindow(
        plans,
        k=settings.k,
        max_delay_ms=settings.kanon_max_delay_ms,
        max_held=settings.kanon_max_held,
        max_held_bytes=settings.kanon_max_held_bytes,
        spread_ms=settings.kanon_release_spread_ms,
    )
    return Parts(router, plans, pipeline, window)


def in_thread(
    target: Callable[[threading.Event], None], stop: threading.Event, name: str
) -> threading.Thread:
    """Run `target(stop)` in a started daemon thread."""
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread


def input_consumer(source: Transport, settings: PipelineSettings) -> Consumer:
    """The worker's consumer of its raw and repartition partitions, in its group.

    Little is fetched ahead: in a backlog, records this worker's stage 1 sends on to the
    repartition topic do not queue behind megabytes of raw records fetched long before
    (they did for seconds, past δ).
    """
    return source.consumer(
        ConsumerOptions(
            group_id=settings.group_id,
            read_committed=True,
            max_poll_records=settings.max_poll_records,
            fetch_max_wait_ms=min(100, settings.poll_timeout_ms),
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            max_prefetch_bytes=PREFETCH_BYTES,
        )
    )


def consent_writer(
    source: Transport, topics: TopicSet, codec: Codec, settings: PipelineSettings
) -> ConsentWriter:
    """The writer that folds published consent changes (consumers.consent_writer)."""
    return ConsentWriter(
        source,
        topics,
        codec,
        group_id=f"{settings.group_id}-consent-writer",
        transactional_id=f"{settings.transactional_id(topics.prefix)}-consent",
    )


def cluster_watch(
    sink: Transport,
    settings: PipelineSettings,
    router: Router,
    topics: TopicSet,
    health: HealthState,
) -> ClusterWatch:
    """The watch of the sink's reachability and residency, its first check requested."""
    targets = router.targets()
    watch = ClusterWatch(
        sink,
        lambda brokers: check_residency(
            brokers, settings.residency_allow, targets, topics.is_mainland
        ),
        health,
        settings.residency_recheck_ms / 1000,
    )
    watch.request_check()
    return watch


def wait_for_sink(watch: ClusterWatch, health: HealthState, stop: threading.Event) -> bool:
    """Fail closed: wait until the sink passes a check; False if stopped first."""
    while not stop.is_set():
        health.last_loop = time.monotonic()  # waiting, not stalled
        if watch.wait_checked(1.0):
            return True
        stop.wait(0.5)
    return False


def wait_for_inputs(
    consumer: Consumer, topics: Sequence[str], health: HealthState, stop: threading.Event
) -> bool:
    """Wait until the group consumer's own metadata knows every input topic; False if
    stopped first.

    A group leader assigns only the partitions its metadata knows when it joins: a worker
    that subscribed right after its topics were created could be given none, and wait for
    the next metadata refresh (minutes) before it took any partition.
    """
    missing = list(topics)
    logged = False
    while not stop.is_set():
        health.last_loop = time.monotonic()  # waiting, not stalled
        still: list[str] = []
        for topic in missing:
            try:
                consumer.partitions_for(topic)
            except TransportError:
                still.append(topic)
        if not still:
            return True
        if not logged:
            log.warning("waiting for the input topics' metadata", extra={"topics": len(still)})
            logged = True
        missing = still
        stop.wait(0.5)
    return False


def distinct_sink(source: Transport, sink: Transport) -> bool:
    """True when outputs go to another cluster than the one consumed from."""
    return sink is not source and sink.bootstrap_servers != source.bootstrap_servers


def output_partitions(sink: Transport, topics: Iterable[str]) -> dict[str, int]:
    """Partition counts of topics the worker writes, on the sink ({} if they cannot be read).

    Read from topic metadata by a short-lived group-less consumer: that needs only
    DESCRIBE on the topics, which the pipeline's ACLs grant.
    """
    probe = sink.consumer(ConsumerOptions(group_id=None))
    try:
        return {topic: len(probe.partitions_for(topic)) for topic in topics}
    except TransportError as exc:
        log.warning(
            "output topics not described; the client picks partitions",
            extra={"error": str(exc)},
        )
        return {}
    finally:
        probe.close()
