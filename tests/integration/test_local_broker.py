"""The local development broker starts from the official jars, answers, and stops."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.broker import LocalBroker

REPO = Path(__file__).resolve().parents[2]


def _cli_status(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "broker", "status", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_local_broker_starts_answers_and_stops(tmp_path: Path) -> None:
    run_dir = tmp_path / "broker"
    broker = LocalBroker(run_dir, rack="cn-test-1b")
    try:
        bootstrap = broker.start(timeout_s=120)
        host, _, port = bootstrap.rpartition(":")
        assert host == "127.0.0.1" and port.isdigit()

        status = broker.status()
        assert status.running and status.bootstrap == bootstrap and status.pid is not None
        assert broker.start() == bootstrap  # already running: same broker, no second one
        assert broker.status().pid == status.pid

        with socket.create_connection((host, int(port)), timeout=5):
            pass

        shown = _cli_status(run_dir)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines() == [bootstrap]
        assert "broker.rack=cn-test-1b" in (run_dir / "server.properties").read_text()
    finally:
        stopped = broker.stop()
    assert stopped
    assert not broker.status().running
    assert not (run_dir / "broker.json").exists()
    assert _cli_status(run_dir).returncode == 1
