"""The local development Kafka broker: one KRaft node in a run folder, started and stopped.

Its jars and java come from `jars`, its configuration from `server_properties`; here
are the process: storage formatted once, started detached, waited on until it answers,
started afresh when a port was taken or the JVM vanished, stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.errors import BrokerError
from ingest.local_broker.jars import REPO_ROOT, ensure_jars, find_java
from ingest.local_broker.server_properties import HOST, new_cluster_id, render_properties

LOG4J_PATH = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"
STATE_FILE = "broker.json"
CONSOLE_FILE = "broker.out"
PORT_ATTEMPTS = 3
"""Starts tried, with fresh ports, when a picked port was bound by someone else first or
the JVM vanished without an error."""
STARTED_LINE = "Kafka Server started"


@dataclass(slots=True, frozen=True)
class BrokerStatus:
    """Whether the broker of a run folder is up, its pid and its bootstrap address."""

    running: bool
    pid: int | None
    bootstrap: str | None


@dataclass(slots=True, frozen=True)
class _State:
    """What `start` records in run_dir/broker.json."""

    pid: int
    port: int
    bootstrap: str
    rack: str


def free_port() -> int:
    """A TCP port on the loopback that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _api_versions_ok(port: int, timeout_s: float = 2.0) -> bool:
    """True when the port answers a Kafka ApiVersions v0 request without error."""
    client = b"consentgate-probe"
    body = struct.pack(">hhih", 18, 0, 7411, len(client)) + client
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = sock.recv(10, socket.MSG_WAITALL)
    except OSError:
        return False
    if len(head) < 10:
        return False
    _size, correlation, error = struct.unpack(">iih", head)
    return bool(correlation == 7411 and error == 0)


def _cmdline(pid: int) -> str | None:
    """The command line of a live process, or None when it is gone (zombies count as gone)."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return None
            return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
    done = subprocess.run(
        ["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


class LocalBroker:
    """One KRaft broker+controller whose config, data, logs and state live in `run_dir`."""

    def __init__(
        self,
        run_dir: Path,
        port: int | None = None,
        rack: str = "cn-north-1a",
        sasl_users: Mapping[str, str] | None = None,
        heap_mb: int = 512,
    ) -> None:
        """Describe the broker; nothing is fetched, written or started yet."""
        self.run_dir = Path(run_dir).resolve()
        self.port = port
        self.rack = rack
        self.heap_mb = heap_mb
        self._sasl_users = dict(sasl_users) if sasl_users else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._offsets: dict[Path, int] = {}  # where the last start's output begins

    def __repr__(self) -> str:
        """Name the run folder and settings, never the passwords."""
        users = sorted(self._sasl_users) if self._sasl_users else None
        return f"LocalBroker(run_dir={self.run_dir}, port={self.port}, rack={self.rack!r}, sasl_users={users})"  # noqa: E501

    @property
    def properties_file(self) -> Path:
        """The server.properties this broker runs with."""
        return self.run_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        """The broker's own log (log4j2 rolling file)."""
        return self.run_dir / "logs" / "server.log"

    @property
    def data_dir(self) -> Path:
        """The KRaft data folder (log.dirs)."""
        return self.run_dir / "data"

    def start(self, timeout_s: float = 90) -> str:
        """Start the broker (or find it running) and return its bootstrap address when ready."""
        state = self._read_state()
        if state is not None and self._our_java(state.pid):
            self._wait_ready(state.pid, state.port, timeout_s, None)
            return state.bootstrap
        java = find_java()
        lib = ensure_jars()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        # Ports picked here were free a moment ago; another process may bind one before
        # the broker does (parallel test processes start brokers at once): then new ones.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._start_once(java, lib, timeout_s)
            except BrokerError:
                if attempt == PORT_ATTEMPTS or not self._worth_another_try():
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, java: str, lib: Path, timeout_s: float) -> str:
        port = self.port or free_port()
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()
        text = render_properties(
            port=port,
            controller_port=controller_port,
            data_dir=self.data_dir,
            rack=self.rack,
            sasl_users=self._sasl_users,
        )
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        self._format_storage(java, lib)
        log_offset = self.log_file.stat().st_size if self.log_file.is_file() else 0
        console = self.run_dir / CONSOLE_FILE
        self._offsets = {self.log_file: log_offset, console: self._console_size()}
        pid = self._launch(java, lib)
        bootstrap = f"{HOST}:{port}"
        state = _State(pid=pid, port=port, bootstrap=bootstrap, rack=self.rack)
        (self.run_dir / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")
        try:
            self._wait_ready(pid, port, timeout_s, log_offset)
        except BrokerError:
            self._terminate(pid, 5)
            (self.run_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        return bootstrap

    def _console_size(self) -> int:
        console = self.run_dir / CONSOLE_FILE
        return console.stat().st_size if console.is_file() else 0

    def _worth_another_try(self) -> bool:
        """True when the last start failed for no fault of its settings: a port was already
        bound, or the JVM vanished before writing any error (seen twice on a loaded machine
        right after log4j came up, with nothing on the console)."""
        output = b""
        for path, offset in self._offsets.items():
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    output += handle.read()
            except OSError:
                continue
        if b"Address already in use" in output or b"BindException" in output:
            return True
        return not any(word in output for word in (b"ERROR", b"FATAL", b"Exception"))

    def stop(self, timeout_s: float = 20) -> bool:
        """Stop the broker (SIGTERM, SIGKILL after the timeout); False when none was running."""
        state = self._read_state()
        stopped = False
        if state is not None and self._our_java(state.pid):
            self._terminate(state.pid, timeout_s)
            stopped = True
        (self.run_dir / STATE_FILE).unlink(missing_ok=True)
        return stopped

    def status(self) -> BrokerStatus:
        """Running means: state file present, its pid is our java, and the port answers."""
        state = self._read_state()
        if state is None or not self._our_java(state.pid):
            return BrokerStatus(running=False, pid=None, bootstrap=None)
        if not _api_versions_ok(state.port):
            return BrokerStatus(running=False, pid=state.pid, bootstrap=None)
        return BrokerStatus(running=True, pid=state.pid, bootstrap=state.bootstrap)

    def _read_state(self) -> _State | None:
        """The state file written by `start`, or None when absent or unreadable."""
        try:
            raw = json.loads((self.run_dir / STATE_FILE).read_text())
            state = _State(
                int(raw["pid"]), int(raw["port"]), str(raw["bootstrap"]), str(raw["rack"])
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return state

    def _our_java(self, pid: int) -> bool:
        """True when `pid` is alive and is the kafka.Kafka process of this run folder."""
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return False
        cmd = _cmdline(pid)
        return cmd is not None and "kafka.Kafka" in cmd and str(self.properties_file) in cmd

    def _format_storage(self, java: str, lib: Path) -> None:
        """Format the data folder with a fresh cluster id unless it is already formatted."""
        meta = self.data_dir / "meta.properties"
        if meta.is_file() and "cluster.id=" in meta.read_text():
            return  # keep topics across restarts
        shutil.rmtree(self.data_dir, ignore_errors=True)
        cmd = [java, "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format"]
        cmd += ["-t", new_cluster_id(), "-c", str(self.properties_file)]
        log4j = f"-Dlog4j2.configurationFile={LOG4J_PATH}"
        cmd[1:1] = [log4j, f"-Dkafka.logs.dir={self.run_dir / 'logs'}"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise BrokerError(f"formatting {self.data_dir} failed:\n{tail}")

    def _launch(self, java: str, lib: Path) -> int:
        """Start `kafka.Kafka` detached, console output to a file in the run folder."""
        cmd = [
            java, "-Xms256m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.run_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={LOG4J_PATH}",
            "-cp", f"{lib}/*", "kafka.Kafka", str(self.properties_file),
        ]  # fmt: skip
        with (self.run_dir / CONSOLE_FILE).open("ab") as out:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.run_dir,
                start_new_session=True,
            )
        return self._proc.pid

    def _wait_ready(self, pid: int, port: int, timeout_s: float, log_offset: int | None) -> None:
        """Wait for ApiVersions to answer and (from `log_offset` on) the started line."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self._our_java(pid):
                raise BrokerError(
                    f"the broker exited during start-up: see {self.log_file} "
                    f"and {self.run_dir / CONSOLE_FILE}"
                )
            started = log_offset is None or self._log_says_started(log_offset)
            if started and _api_versions_ok(port):
                return
            time.sleep(0.25)
        raise BrokerError(f"the broker was not ready after {timeout_s:g} s: see {self.log_file}")

    def _log_says_started(self, offset: int) -> bool:
        """True when server.log holds the start-up line after `offset` (this run's part)."""
        try:
            with self.log_file.open("rb") as handle:
                if handle.seek(0, os.SEEK_END) < offset:
                    offset = 0  # the log rolled over since
                handle.seek(offset)
                return STARTED_LINE.encode() in handle.read()
        except OSError:
            return False

    def _terminate(self, pid: int, timeout_s: float) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; reap it when it is our child."""
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not self._our_java(pid):
                    return
                time.sleep(0.1)
        raise BrokerError(f"broker process {pid} survived SIGKILL")
