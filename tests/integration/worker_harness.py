"""Run real `consentgate run` worker processes against the test broker, and read their outputs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.kafka import Message, Transport
from ingest.kafka.topic_reader import read_messages
from ingest.kafka.topics import TopicSet
from ingest.metrics_text import Samples, parse_exposition


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    """One worker subprocess and its metrics port."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def url(self, path: str) -> str:
        """URL of an endpoint of this worker."""
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of an endpoint; (0, "") if it does not answer."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout_s: float = 180) -> None:
        """Block until /readyz answers 200; fail with the worker's log otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()}")
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.diagnosis()}")

    def diagnosis(self) -> str:
        """What a stuck worker can tell: its /readyz flags, then its log with every
        thread's stack (SIGUSR1, `consentgate run`) at the end."""
        status, body = self.get("/readyz")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1.0)  # the dump is written by the worker's signal handler
        return f"/readyz {status} {body}\n{self.full_log()[-12000:]}"

    def metrics(self) -> Samples:
        """Scraped samples of the consentgate_ series."""
        status, body = self.get("/metrics")
        assert status == 200, "metrics endpoint did not answer"
        samples = parse_exposition(body)
        return {s: v for s, v in samples.items() if s.name.startswith("consentgate_")}

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL: no chance to commit or clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def log(self) -> str:
        """The worker's stderr so far (last 4 KiB)."""
        return self.full_log()[-4000:]

    def full_log(self) -> str:
        """The worker's whole stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        """The worker's JSON log entries so far, whole (a line cut short by SIGKILL skipped)."""
        entries = []
        for line in self.full_log().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def problems(self) -> list[dict[str, Any]]:
        """The worker's own warnings and errors (not its Kafka client's), in order."""
        return [
            e
            for e in self.events()
            if e.get("level") != "info"
            and str(e.get("logger", "")).startswith(("consumers", "ingest"))
        ]


def start_worker(
    bootstrap: str,
    topics: TopicSet,
    log_dir: Path,
    *,
    index: int = 0,
    group: str = "g",
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start `consentgate run` as a subprocess with its own metrics port."""
    port = free_port()
    log_path = log_dir / f"worker-{index}-{port}.log"
    cmd = [
        sys.executable, "-m", "ingest.cli.main", "run",
        "--bootstrap", bootstrap, "--prefix", topics.prefix,
        "--group", group, "--worker-index", str(index),
        "--metrics-port", str(port - index), "--demo",
        *extra,
    ]  # fmt: skip
    full_env = {**os.environ, **(env or {})}
    with log_path.open("wb") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=full_env)
    return WorkerProcess(proc, port, log_path)


@contextmanager
def running_worker(
    bootstrap: str, topics: TopicSet, log_dir: Path, **kwargs: object
) -> Iterator[WorkerProcess]:
    """A ready worker for the block; stopped with SIGTERM afterwards."""
    worker = start_worker(bootstrap, topics, log_dir, **kwargs)  # type: ignore[arg-type]
    try:
        worker.wait_ready()
        yield worker
    finally:
        if worker.proc.poll() is None:
            worker.stop()


def read_topic(transport: Transport, topic: str, timeout_s: float = 30) -> list[Message]:
    """Every committed record of a topic, read to its end (read_committed)."""
    return list(read_messages(transport, topic, timeout_s))


def wait_for(
    predicate: Callable[[], object], timeout_s: float = 60, what: str = "condition"
) -> None:
    """Poll a condition every half second; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def dump(obj: object) -> str:
    """Compact JSON for assertion messages (scraped samples keyed by their series)."""
    if isinstance(obj, Mapping):
        obj = {str(key): value for key, value in obj.items()}
    return json.dumps(obj, default=str)[:2000]
