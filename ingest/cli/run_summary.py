"""The demo's closing table from the workers' merged metrics: totals, drops, latency."""

from __future__ import annotations

from ingest.metrics_text import Samples, by_label, metric_sum, quantile_of


def summary_table(samples: Samples, published: int) -> str:
    """The demo's closing table: in, forwarded, dropped by reason, dead letters, latency."""
    rows: list[tuple[str, str]] = [
        ("events published", f"{published:,}"),
        ("events consumed", f"{metric_sum(samples, 'consentgate_consumed_total'):,.0f}"),
        ("forwarded (anonymized)", f"{metric_sum(samples, 'consentgate_forwarded_total'):,.0f}"),
    ]
    for reason, value in sorted(by_label(samples, "consentgate_dropped_total", "reason").items()):
        rows.append((f"dropped: {reason}", f"{value:,.0f}"))
    rows += [
        ("dead-lettered", f"{metric_sum(samples, 'consentgate_dead_lettered_total'):,.0f}"),
        ("k-anon suppressed", f"{metric_sum(samples, 'consentgate_kanon_suppressed_total'):,.0f}"),
        (
            "k-anon fields generalized",
            f"{metric_sum(samples, 'consentgate_kanon_generalized_total'):,.0f}",
        ),
        ("still held (k-anon)", f"{metric_sum(samples, 'consentgate_kanon_pending'):,.0f}"),
        ("erasure requests", f"{metric_sum(samples, 'consentgate_erasure_requests_total'):,.0f}"),
    ]
    for label, name in (
        ("latency excl. hold", "consentgate_end_to_end_latency_seconds"),
        ("k-anon hold", "consentgate_kanon_hold_seconds"),
    ):
        p50, p99 = quantile_of(samples, name, 0.5), quantile_of(samples, name, 0.99)
        if p50 is not None and p99 is not None:
            rows.append((f"{label} p50 / p99", f"{p50 * 1000:,.0f} ms / {p99 * 1000:,.0f} ms"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v:>16}" for k, v in rows)
