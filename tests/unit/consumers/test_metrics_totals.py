"""The worker's last log line carries its accounting terms, summed over their labels."""

from __future__ import annotations

from consumers import metrics as m


def test_outcome_totals_sum_every_label_of_each_counter() -> None:
    before = m.outcome_totals()
    m.DROPPED.labels(reason="consent_withdrawn").inc(2)
    m.DROPPED.labels(reason="kanon_suppressed").inc(3)
    m.SUPPRESSED.inc(3)
    m.CONSUMED.labels(event_type="device_event").inc(5)
    after = m.outcome_totals()
    assert after["dropped"] - before["dropped"] == 5
    assert after["suppressed"] - before["suppressed"] == 3
    assert after["consumed"] - before["consumed"] == 5
    assert after["forwarded"] == before["forwarded"]
    assert set(after) == {
        "consumed",
        "forwarded",
        "dropped",
        "dead_lettered",
        "suppressed",
        "pending_restored",
        "pending_handed_off",
    }
