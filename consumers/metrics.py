"""Prometheus metrics of a pipeline worker. Labels are low-cardinality and never personal.

Accounting identity (SPEC section 9), per worker process:

    consumed + pending_restored
      = forwarded + sum(dropped by reason) + dead_lettered + pending_handed_off + pending
        + (regrouped{out} - regrouped{in})

`regrouped` counts held records through the repartition topic (grouping across
workers, consumers.regroup): out when this worker sends one to the worker that
groups its region, in when it takes one into its own window. Their difference is
what is in transit on that topic: summed over all workers it is zero once the topic
is drained (and always for `kanon_grouping = "local"`).
`pending_restored` (records of the k-anonymity window reloaded from the
checkpoint at start or on assignment) and `pending_handed_off` (records of
revoked partitions left for their new owner) are zero in a run without
restarts or rebalances, where the identity is consumed = forwarded +
dropped + dead-lettered + pending. Counters move only when a transaction
commits, so an aborted batch is never counted, and they move under
UPDATE_LOCK, which /metrics also takes, so every scrape balances.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Gauge, Histogram

UPDATE_LOCK = threading.Lock()
"""Held while one commit's counters move and while /metrics takes its snapshot, so a
scrape always sees the accounting identity whole, never half a commit."""

CONSUMED = Counter(
    "consentgate_consumed_total", "Raw records consumed (committed).", ["event_type"]
)
FORWARDED = Counter(
    "consentgate_forwarded_total", "Anonymized records written to analyst topics.", ["event_type"]
)
DROPPED = Counter(
    "consentgate_dropped_total",
    "Records removed, by reason (consent reasons and kanon_suppressed).",
    ["reason"],
)
DEAD_LETTERED = Counter(
    "consentgate_dead_lettered_total", "Records sent to the dead-letter topic.", ["reason"]
)
PENDING = Gauge("consentgate_kanon_pending", "Records held in the k-anonymity window.")
PENDING_RESTORED = Counter(
    "consentgate_kanon_pending_restored_total", "Held records reloaded from the checkpoint."
)
PENDING_HANDED_OFF = Counter(
    "consentgate_kanon_pending_handed_off_total",
    "Held records of revoked partitions, left checkpointed for their new owner.",
)
PRODUCED = Counter(
    "consentgate_produced_total", "Records produced (committed), by topic role.", ["role"]
)
FIELDS_REMOVED = Counter(
    "consentgate_fields_removed_total",
    "Sensitive fields removed for lack of consent, by category.",
    ["category"],
)
TAGS = Counter(
    "consentgate_field_tags_total", "Present fields seen, by sensitivity level.", ["level"]
)
PII_FOUND = Counter(
    "consentgate_pii_found_total", "Personal data found in free text and replaced.", ["type"]
)
MINORS = Counter("consentgate_minor_records_total", "Records of minors, by outcome.", ["outcome"])
SUPPRESSED = Counter(
    "consentgate_kanon_suppressed_total", "Records suppressed at the k-anonymity deadline."
)
GENERALIZED = Counter(
    "consentgate_kanon_generalized_total",
    "Released records whose field was coarser than its level-0 value, by output field.",
    ["field"],
)
HOLD_SECONDS = Histogram(
    "consentgate_kanon_hold_seconds",
    "Time a record waited in the k-anonymity window.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120),
)
BATCH_SECONDS = Histogram(
    "consentgate_batch_duration_seconds",
    "Time to process and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
E2E_SECONDS = Histogram(
    "consentgate_end_to_end_latency_seconds",
    "Raw record timestamp to committed output, excluding the k-anonymity hold.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TRANSACTIONS = Counter(
    "consentgate_transactions_total", "Kafka transactions, by outcome.", ["outcome"]
)
ERASURES = Counter(
    "consentgate_erasure_requests_total", "Erasure requests written for cancelled accounts."
)
CONSENT_USERS = Gauge("consentgate_consent_table_users", "Users in the consent table.")
CONSENT_LAG = Gauge(
    "consentgate_consent_lag_records", "Consent records behind the consent topic's end."
)
CONSENT_CHANGES = Counter(
    "consentgate_consent_changes_total",
    "Consent changes the consent writer read, by outcome (applied, duplicate, invalid, "
    "after_deletion).",
    ["outcome"],
)
CONSENT_APPLIED = Counter(
    "consentgate_consent_records_applied_total", "Consent records read into the table."
)
CONSUMER_LAG = Gauge(
    "consentgate_consumer_lag_records",
    "Raw records not yet consumed, per assigned partition.",
    ["topic", "partition"],
)
RESIDENCY_OK = Gauge(
    "consentgate_residency_ok", "1 if the sink passed the mainland residency check."
)
RESIDENCY_VIOLATIONS = Counter(
    "consentgate_residency_violations_total", "Residency checks that failed, by kind.", ["kind"]
)
READY = Gauge("consentgate_ready", "1 when the worker is ready (see /readyz).")
ASSIGNED = Gauge("consentgate_assigned_partitions", "Raw partitions assigned to this worker.")
REGROUPED = Counter(
    "consentgate_kanon_regrouped_total",
    "Held records sent to the repartition topic (out) or taken from it into this worker's "
    "window (in).",
    ["direction"],
)
TEXT_WITHHELD = Counter(
    "consentgate_text_withheld_total",
    "Free-text fields withheld because they exceed the scrubber's size cap, by field.",
    ["field"],
)
BROKER_CONNECTED = Gauge(
    "consentgate_broker_connected",
    "1 while the worker reaches the cluster (its last metadata request or commit succeeded).",
)
LAST_COMMIT = Gauge(
    "consentgate_last_commit_timestamp_seconds",
    "Unix time of the worker's last committed transaction (or of start, before the first).",
)
BATCH_FAILURES = Counter(
    "consentgate_batch_failures_total",
    "Batches that failed and were rewound, by cause (send, commit, process).",
    ["cause"],
)
KANON_CAPPED = Counter(
    "consentgate_kanon_capped_total",
    "Held records let out early because the window reached its count or byte cap, by action "
    "(released, suppressed).",
    ["action"],
)


def _summed(counter: Counter) -> int:
    return int(
        sum(
            sample.value
            for family in counter.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
    )


def outcome_totals() -> dict[str, int]:
    """This process's accounting terms, summed over labels (the worker's last log line)."""
    with UPDATE_LOCK:
        return {
            "consumed": _summed(CONSUMED),
            "forwarded": _summed(FORWARDED),
            "dropped": _summed(DROPPED),
            "dead_lettered": _summed(DEAD_LETTERED),
            "suppressed": _summed(SUPPRESSED),
            "pending_restored": _summed(PENDING_RESTORED),
            "pending_handed_off": _summed(PENDING_HANDED_OFF),
        }
