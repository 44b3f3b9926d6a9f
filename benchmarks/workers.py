"""Real `consentgate run` worker processes for the benchmark, and readings of their /metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.machine import cpu_seconds, rss_mb
from ingest.kafka.topics import Role, TopicSet
from ingest.local_broker.broker import free_port
from ingest.metrics_text import Samples, metric_sum, parse_exposition

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(slots=True)
class WorkerProc:
    """One worker subprocess with its metrics port and log file."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    rss: list[float] = field(default_factory=list)

    def scrape(self) -> Samples:
        """The worker's scraped samples; {} if it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                body = r.read().decode()
        except (urllib.error.URLError, OSError):
            return {}
        return parse_exposition(body)

    def sample_rss(self) -> None:
        """Record the current resident set size."""
        value = rss_mb(self.proc.pid)
        if value:
            self.rss.append(round(value, 1))

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return cpu_seconds(self.proc.pid)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        """The last lines of the worker's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""


def start_workers(
    bootstrap: str,
    prefix: str,
    count: int,
    log_dir: Path,
    *,
    group: str,
    extra: Sequence[str] = (),
) -> list[WorkerProc]:
    """Start `count` workers of one group (worker indexes 0..count-1), each on its own port."""
    base = free_port()
    while any(_busy(base + i) for i in range(count)):
        base = free_port()
    workers = []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for index in range(count):
        log_path = log_dir / f"{prefix.strip('.')}-worker-{index}.log"
        cmd = [
            sys.executable, "-m", "ingest.cli.main", "run",
            "--bootstrap", bootstrap, "--prefix", prefix, "--group", group,
            "--worker-index", str(index), "--metrics-port", str(base), "--demo",
            "--log-level", "warning", *extra,
        ]  # fmt: skip
        with log_path.open("wb") as handle:
            proc = subprocess.Popen(
                cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
            )
        workers.append(WorkerProc(proc, base + index, log_path))
    return workers


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class WorkerFailed(RuntimeError):
    """A benchmark worker exited or never became ready."""


def input_partitions(topics: TopicSet, extra: Sequence[str] = ()) -> int:
    """Partitions a worker group consumes: the raw topics, and the repartition topic unless
    the workers run with `--kanon-grouping local`."""
    roles: list[Role] = ["raw_device", "raw_log"]
    if "local" not in extra:
        roles.append("kanon_repartition")
    return sum(topics.specs[role].partitions for role in roles)


def wait_assigned(workers: Sequence[WorkerProc], partitions: int, timeout_s: float = 120) -> None:
    """Wait until every worker holds partitions and together they hold `partitions`."""
    deadline = time.monotonic() + timeout_s
    assigned = ready = [0.0] * len(workers)
    while time.monotonic() < deadline:
        for w in workers:
            if w.proc.poll() is not None:
                raise WorkerFailed(f"worker exited early:\n{w.log_tail()}")
        assigned = [metric_sum(w.scrape(), "consentgate_assigned_partitions") for w in workers]
        ready = [metric_sum(w.scrape(), "consentgate_ready") for w in workers]
        if all(a > 0 for a in assigned) and sum(assigned) == partitions and all(ready):
            return
        time.sleep(0.2)
    states = "\n".join(
        f"worker {i}: {assigned[i]:g} partitions, ready {ready[i]:g}; its log ends:\n{w.log_tail()}"
        for i, w in enumerate(workers)
    )
    raise WorkerFailed(f"workers not given {partitions} partitions in {timeout_s:g} s:\n{states}")
