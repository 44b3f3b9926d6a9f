"""Turn one run's scenario results into results/latest.json and the Markdown table."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issues 6 and 8: a measured figure against a threshold."""

    name: str
    wanted: str
    measured: Callable[[dict[str, Any]], float | None]
    threshold: float
    higher_is_better: bool = True
    per_core: tuple[str, str] | None = None  # scenarios whose CPU cost ratio is shown too


def _ratio(a: str, b: str) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        x, y = r.get(a), r.get(b)
        return (
            round(x / y, 3)
            if isinstance(x, int | float) and isinstance(y, int | float) and y
            else None
        )

    return get


def _key(name: str) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        value = r.get(name)
        return value if isinstance(value, int | float) else None

    return get


_R, _K = _ratio, _key
TARGETS = (
    Target("pipeline 1 proc / passthrough (kafka-python)", ">= 0.60",
           _R("pipeline_eps_1", "passthrough_eps"), 0.60,
           per_core=("pipeline_1", "passthrough")),
    Target("events/s per worker process (kafka-python, EOS)", ">= 20,000",
           _K("pipeline_eps_1"), 20_000),
    Target("2 processes / 1 process", ">= 1.6 (cores allowing)",
           _R("pipeline_eps_2", "pipeline_eps_1"), 1.6),
    Target("exactly-once / at-least-once", ">= 0.90", _R("eos_eps", "alos_eps"), 0.90,
           per_core=("pipeline_1", "pipeline_1_alos")),
    Target("p99 latency at 50 % load (ms, no hold)", "<= commit interval + 50",
           _K("latency_p99_ms"), math.nan, False),
    Target("worker RSS spread, pipeline_1 backlog run", "<= 10 %",
           _K("rss_spread_pct"), 10.0, False),
    Target("worker RSS spread, 10-minute soak (after 1 min)", "<= 10 %",
           _K("soak_rss_spread_pct"), 10.0, False),
    Target("confluent pipeline / Quix Streams", ">= 1.3",
           _R("pipeline_eps_1_confluent", "peer_quix_eps"), 1.3,
           per_core=("pipeline_1_confluent", "peer_quix")),
    Target("repartition hop: pipeline / local grouping (kafka-python)", "reported",
           _R("pipeline_eps_1", "pipeline_eps_1_local"), 0.0,
           per_core=("pipeline_1", "pipeline_1_local")),
    Target("repartition hop: pipeline / local grouping (confluent)", "reported",
           _R("pipeline_eps_1_confluent", "pipeline_eps_1_confluent_local"), 0.0,
           per_core=("pipeline_1_confluent", "pipeline_1_confluent_local")),
    Target("confluent pipeline / confluent passthrough", ">= 0.40",
           _R("pipeline_eps_1_confluent", "passthrough_eps_confluent"), 0.40,
           per_core=("pipeline_1_confluent", "passthrough_confluent")),
)  # fmt: skip


def _eps(scenarios: dict[str, Any], name: str) -> int | None:
    value = scenarios.get(name, {}).get("eps")
    return int(value) if isinstance(value, int | float) else None


def _spread(scenario: dict[str, Any]) -> float | None:
    """(max - min) / min of a worker's RSS after its first fifth of samples, in percent."""
    rss = scenario.get("rss_mb") or []
    if not rss or not rss[0]:
        return None
    low, high = rss[0]["min"], rss[0]["max"]
    return round((high - low) * 100 / low, 1) if low else None


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The flat keys the issues ask for, computed from the scenario results."""
    s = result.get("scenarios", {})
    lat = s.get("latency", {})
    settings = result.get("settings", {})
    out: dict[str, Any] = {
        "passthrough_eps": _eps(s, "passthrough"),
        "passthrough_eps_confluent": _eps(s, "passthrough_confluent"),
        "pipeline_eps_1": _eps(s, "pipeline_1"),
        "pipeline_eps_2": _eps(s, "pipeline_2"),
        "eos_eps": _eps(s, "pipeline_1"),
        "alos_eps": _eps(s, "pipeline_1_alos"),
        "pipeline_eps_1_confluent": _eps(s, "pipeline_1_confluent"),
        "pipeline_eps_1_local": _eps(s, "pipeline_1_local"),
        "pipeline_eps_1_confluent_local": _eps(s, "pipeline_1_confluent_local"),
        "peer_quix_eps": _eps(s, "peer_quix"),
        "latency_p50_ms": lat.get("probe_p50_ms"),
        "latency_p99_ms": lat.get("probe_p99_ms"),
        "latency_max_ms": lat.get("probe_max_ms"),
        "latency_p99_with_hold_upper_bound_ms": lat.get("with_hold_p99_upper_bound_ms"),
        "latency_load_eps": lat.get("rate_eps"),
        "commit_interval_ms": settings.get("commit_interval_ms"),
        "rss_spread_pct": _spread(s.get("pipeline_1", {})),
        "soak_rss_spread_pct": result.get("soak", {}).get("spread_pct"),
    }
    # A pipeline's records cost until its windows released them (drained), not only
    # until they were consumed; the other scenarios hold nothing back.
    out["client_cpu_us_per_record"] = {
        name: sc.get("cpu_us_per_record_drained", sc.get("cpu_us_per_record"))
        for name, sc in s.items()
        if isinstance(sc, dict) and "cpu_us_per_record" in sc
    }
    # What one process would do with a whole core: robust against other jobs' load.
    out["cpu_bound_eps_per_process"] = {
        name: round(1e6 / us) if isinstance(us, int | float) and us > 0 else None
        for name, us in out["client_cpu_us_per_record"].items()
    }
    stages = s.get("stages", {})
    if stages:
        out["stage_us_per_record"] = stages.get("pure", {}).get("us_per_record")
        out["client_stage_cpu_us_per_record"] = stages.get("clients_cpu_us_per_record")
    out["same_drops_both_transports"] = _same_drops(s)
    return out


def _same_drops(s: dict[str, Any]) -> bool | None:
    a = s.get("pipeline_1", {}).get("counters")
    b = s.get("pipeline_1_confluent", {}).get("counters")
    if not a or not b:
        return None

    def consent_drops(c: dict[str, Any]) -> dict[str, float]:
        return {k: v for k, v in c["dropped"].items() if "kanon_suppressed" not in k}

    return bool(
        consent_drops(a) == consent_drops(b)
        and a["dead_lettered"] == b["dead_lettered"]
        and a["consumed"] == b["consumed"]
    )


def _verdict(target: Target, value: float | None, threshold: float) -> str:
    if target.wanted == "reported":
        return "reported"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    ok = value >= threshold if target.higher_is_better else value <= threshold
    return "met" if ok else "NOT met"


def markdown(result: dict[str, Any]) -> str:
    """The short table: main figures, then each target with its measured value and verdict."""
    h = result["headline"]
    m = result.get("machine", {})
    lines = [
        "# Benchmark: latest run",
        "",
        f"{m.get('cores')} cores ({m.get('cpu_model')}), {m.get('memory_mb')} MB, "
        f"Python {m.get('python')}, Kafka {m.get('kafka_broker')}, kafka-python "
        f"{m.get('kafka_python')}, confluent-kafka {m.get('confluent_kafka')}. "
        f"Load average at start {m.get('load_average_at_start')}, at end "
        f"{result.get('load_average_at_end')} (other jobs share this machine). "
        f"Events {result.get('workload', {}).get('events')}, mean value "
        f"{result.get('workload', {}).get('value_bytes_mean', {}).get('all')} bytes; "
        f"run took {result.get('elapsed_s')} s.",
        "",
        "| figure | events/s | client CPU µs/record | events/s per full core |",
        "|---|---:|---:|---:|",
    ]
    cpu = h.get("client_cpu_us_per_record", {})
    bound = h.get("cpu_bound_eps_per_process", {})
    rows = (
        ("passthrough, kafka-python, EOS", "passthrough_eps", "passthrough"),
        ("passthrough, confluent-kafka, EOS", "passthrough_eps_confluent", "passthrough_confluent"),
        ("pipeline, kafka-python, 1 process, EOS", "pipeline_eps_1", "pipeline_1"),
        ("pipeline, kafka-python, 2 processes, EOS", "pipeline_eps_2", "pipeline_2"),
        ("pipeline, kafka-python, 1 process, at-least-once", "alos_eps", "pipeline_1_alos"),
        ("pipeline, confluent-kafka, 1 process, EOS", "pipeline_eps_1_confluent",
         "pipeline_1_confluent"),
        ("pipeline, kafka-python, 1 process, EOS, local grouping (no repartition hop)",
         "pipeline_eps_1_local", "pipeline_1_local"),
        ("pipeline, confluent-kafka, 1 process, EOS, local grouping (no repartition hop)",
         "pipeline_eps_1_confluent_local", "pipeline_1_confluent_local"),
        ("peer: Quix Streams 3.28, EOS, consent workload", "peer_quix_eps", "peer_quix"),
    )  # fmt: skip
    for label, key, scenario in rows:
        value = h.get(key)
        shown = f"{value:,}" if isinstance(value, int) else "—"
        c, b = cpu.get(scenario), bound.get(scenario)
        per_core = f"{b:,}" if isinstance(b, int) else "—"
        lines.append(f"| {label} | {shown} | {c if c is not None else '—'} | {per_core} |")
    lines += [
        "",
        f"Latency at {h.get('latency_load_eps')} events/s (probe, publish → visible to "
        f"read_committed, no k-anonymity hold): p50 {h.get('latency_p50_ms')} ms, p99 "
        f"{h.get('latency_p99_ms')} ms, max {h.get('latency_max_ms')} ms; with the hold, "
        f"p99 ≤ {h.get('latency_p99_with_hold_upper_bound_ms')} ms. "
        f"Commit interval {h.get('commit_interval_ms')} ms.",
        "",
        "| target | wanted | measured | verdict | same ratio per full core |",
        "|---|---|---:|---|---:|",
    ]
    for target in TARGETS:
        threshold = target.threshold
        if math.isnan(threshold):
            threshold = float(h.get("commit_interval_ms") or 500) + 50
        value = target.measured(h)
        core = "—"
        if target.per_core is not None:
            got = _R(*target.per_core)(h.get("cpu_bound_eps_per_process", {}))
            core = "—" if got is None else f"{got}"
        lines.append(
            f"| {target.name} | {target.wanted} | {value if value is not None else '—'} "
            f"| {_verdict(target, value, threshold)} | {core} |"
        )
    same = h.get("same_drops_both_transports")
    lines.append(
        f"| same consent drops and dead letters on both transports | yes | "
        f"{'—' if same is None else 'yes' if same else 'no'} | "
        f"{'not measured' if same is None else 'met' if same else 'NOT met'} | — |"
    )
    for name, why in result.get("skipped", {}).items():
        lines.append(f"\nSkipped {name}: {why}")
    for name, why in result.get("errors", {}).items():
        lines.append(f"\nFailed {name}: {why.splitlines()[0] if why else ''}")
    return "\n".join(lines) + "\n"


def rewrite(folder: Path) -> None:
    """Recompute the headline keys and the table from an existing latest.json."""
    data = json.loads((folder / "latest.json").read_text())
    keys = set(headline(data))
    write({k: v for k, v in data.items() if k not in keys}, folder)


def write(result: dict[str, Any], folder: Path) -> None:
    """Write latest.json (headline keys first, then everything) and latest.md."""
    soak = folder / "soak.json"
    if soak.is_file():  # written by `python -m benchmarks.soak`, a separate run
        data = json.loads(soak.read_text())
        result["soak"] = {k: v for k, v in data.items() if k != "rss_samples_mb"}
    result["headline"] = headline(result)
    flat = {**result["headline"], **{k: v for k, v in result.items() if k != "headline"}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(json.dumps(flat, indent=2, default=str) + "\n")
    (folder / "latest.md").write_text(markdown(result))


if __name__ == "__main__":
    rewrite(Path(__file__).resolve().parent / "results")
