"""Prometheus metrics of the publishing side (SDK, `publish`, `simulate`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PUBLISHED = Counter(
    "consentgate_published_total",
    "Records handed to the producer, by event type.",
    ["event_type"],
)
PUBLISH_REJECTED = Counter(
    "consentgate_publish_rejected_total",
    "Records refused before sending (validation or encoding), by event type.",
    ["event_type"],
)
PUBLISH_FAILED = Counter(
    "consentgate_publish_failed_total",
    "Records the broker did not acknowledge.",
)
FLUSH_SECONDS = Histogram(
    "consentgate_publish_flush_seconds",
    "Time spent waiting in flush().",
)
