"""The Quix Streams peer: its own virtual environment, run as a subprocess on the same broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.workers import REPO_ROOT
from benchmarks.workload import Workload, create_topics, fast_transport, prepare_prefix
from ingest.kafka.topics import load_topic_set

QUIX_VENV = Path(__file__).resolve().parent / ".venv-quix"
QUIX_REQUIREMENT = "quixstreams==3.28.*"


class PeerUnavailable(RuntimeError):
    """Quix Streams could not be installed or run; the message says why."""


def quix_python() -> Path:
    """The Quix venv's interpreter, creating the venv and installing Quix once."""
    python = QUIX_VENV / "bin" / "python"
    probe = [str(python), "-c", "import quixstreams, fastavro"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    steps = [
        [sys.executable, "-m", "venv", str(QUIX_VENV)],
        [str(python), "-m", "pip", "install", "-q", QUIX_REQUIREMENT, "fastavro"],
    ]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-600:]
            raise PeerUnavailable(f"`{' '.join(cmd[:4])} ...` failed: {tail}")
    return python


def _version(python: Path) -> str:
    code = (
        "import importlib.metadata as m; "
        "print(m.version('quixstreams'), m.version('confluent-kafka'))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run_quix(bootstrap: str, work: Workload, prefix: str, tmp: Path) -> dict[str, Any]:
    """Run benchmarks/quix_peer.py on a fresh prefix with the workload preloaded; its result."""
    python = quix_python()
    loader = fast_transport(bootstrap)
    outs = [f"{prefix}quix.anonymized.device-events", f"{prefix}quix.anonymized.log-events"]
    create_topics(loader, load_topic_set(prefix=prefix), extra=outs)
    prepare_prefix(loader, prefix, work)
    events = len(work.events)
    cmd = [
        str(python), str(Path(__file__).with_name("quix_peer.py")),
        "--bootstrap", bootstrap, "--prefix", prefix, "--events", str(events),
        "--state-dir", str(tmp / "quix-state"),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=400, cwd=REPO_ROOT, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise PeerUnavailable(f"quix peer failed: {done.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    versions = _version(python).split()
    result["quixstreams"] = versions[0] if versions else None
    result["confluent_kafka_in_quix_env"] = versions[1] if len(versions) > 1 else None
    return result
