"""The local development broker starts from the official jars, answers, and stops."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.local_broker import broker as broker_module
from ingest.local_broker.broker import LocalBroker

REPO = Path(__file__).resolve().parents[2]


def _cli_status(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli.main", "broker", "status", "--run-dir", str(run_dir)],
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


@pytest.mark.integration
def test_a_picked_port_bound_by_another_process_first_is_picked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel test processes start brokers at once: a port free a moment ago may not be."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks = iter([taken.getsockname()[1]])
    real_free_port = broker_module.free_port
    monkeypatch.setattr(broker_module, "free_port", lambda: next(picks, None) or real_free_port())
    broker = LocalBroker(tmp_path / "broker")
    try:
        bootstrap = broker.start(timeout_s=120)
        assert bootstrap != f"127.0.0.1:{taken.getsockname()[1]}"
        assert broker.status().running
        console = (tmp_path / "broker" / "broker.out").read_bytes()
        server_log = (tmp_path / "broker" / "logs" / "server.log").read_bytes()
        assert b"Address already in use" in console + server_log, "the first start clashed"
    finally:
        broker.stop()
        taken.close()
