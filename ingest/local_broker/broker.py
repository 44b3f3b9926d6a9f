"""The local development Kafka broker: official jars via Maven, one KRaft node in a run folder."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ingest.errors import BrokerError

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_PATH = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J_PATH = REPO_ROOT / "deploy" / "kafka" / "log4j2.properties"
HOST = "127.0.0.1"
STATE_FILE = "broker.json"
CONSOLE_FILE = "broker.out"
PORT_ATTEMPTS = 3
"""Starts tried, with fresh ports, when a picked port was bound by someone else first or
the JVM vanished without an error."""
STARTED_LINE = "Kafka Server started"
_MARKER = ".complete"
_USER_RE = re.compile(r"[A-Za-z0-9._-]+")
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule required"


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


def default_cache_dir() -> Path:
    """The jar cache outside the repo: `$CONSENTGATE_CACHE` or `~/.cache/consentgate`."""
    env = os.environ.get("CONSENTGATE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "consentgate"


def kafka_version(pom: Path = POM_PATH) -> str:
    """The `kafka.version` property of the broker pom."""
    try:
        root = ET.parse(pom).getroot()
    except (OSError, ET.ParseError) as exc:
        raise BrokerError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    for elem in root.iter():
        if elem.tag.rsplit("}", 1)[-1] == "kafka.version" and elem.text and elem.text.strip():
            return elem.text.strip()
    raise BrokerError(f"no <kafka.version> property in {pom}")


def ensure_jars(cache_dir: Path | None = None) -> Path:
    """Copy the broker's runtime jars into the cache once (Maven) and return the lib folder."""
    if not POM_PATH.is_file():
        raise BrokerError(
            f"Kafka pom not found at {POM_PATH}: the local broker runs from a source checkout"
        )
    version = kafka_version(POM_PATH)
    home = (cache_dir or default_cache_dir()) / f"kafka-{version}"
    lib, marker = home / "lib", home / _MARKER
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"kafka-{version}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first runs fetch once; freed on close
        if marker.is_file() and marker.read_text().strip() == digest and lib.is_dir():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError("mvn not found: install Maven 3.8+ to fetch the Kafka jars")
        marker.unlink(missing_ok=True)
        shutil.rmtree(lib, ignore_errors=True)
        cmd = [
            mvn, "-q", "-B", "-Dstyle.color=never", "dependency:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={lib}", "-f", str(POM_PATH),
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrokerError("Maven did not finish fetching the Kafka jars in 900 s") from exc
        if done.returncode != 0 or not any(lib.glob("kafka_*.jar")):
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise BrokerError(f"Maven could not fetch Kafka {version} jars:\n{tail}")
        marker.write_text(digest + "\n")
    return lib


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding, no leading '-'."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def free_port() -> int:
    """A TCP port on the loopback that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _jaas(username: str, password: str, users: Mapping[str, str]) -> str:
    """One PLAIN JAAS line: client credentials plus the users the listener accepts."""
    accepted = " ".join(f'user_{name}="{pw}"' for name, pw in users.items())
    return f'{_PLAIN_MODULE} username="{username}" password="{password}" {accepted};'


def _check_users(users: Mapping[str, str]) -> None:
    """Refuse user names or passwords that cannot be written into a JAAS line safely."""
    if "admin" not in users:
        raise BrokerError("sasl_users must include 'admin' (the super user)")
    for name, password in users.items():
        if not _USER_RE.fullmatch(name):
            raise BrokerError("SASL user names may only hold letters, digits, '.', '_' and '-'")
        if not password or any(c in password for c in '"\\') or not password.isprintable():
            raise BrokerError(
                f"the password of SASL user {name!r} is empty or holds a quote, "
                "a backslash or a control character"
            )


def render_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    rack: str,
    sasl_users: Mapping[str, str] | None = None,
    node_id: int = 1,
) -> str:
    """The server.properties of a one-node KRaft broker+controller (PLAINTEXT or SASL/PLAIN)."""
    protocol = "SASL_PLAINTEXT" if sasl_users else "PLAINTEXT"
    ctl_protocol = "SASL_PLAINTEXT" if sasl_users else "PLAINTEXT"
    props: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": f"{node_id}@{HOST}:{controller_port}",
        "listeners": f"{protocol}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"{protocol}://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": protocol,
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:{ctl_protocol}",
        "log.dirs": str(data_dir),
        "broker.rack": rack,
        "num.partitions": 1,
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": 0,
        # One node: without these, transactions and consumer groups fail silently.
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 8,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "min.insync.replicas": 1,
        "default.replication.factor": 1,
    }
    if sasl_users:
        _check_users(sasl_users)
        admin_pw = sasl_users["admin"]
        props |= {
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            # The broker registers with its controller over SASL too, else as User:ANONYMOUS.
            "sasl.mechanism.controller.protocol": "PLAIN",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": "User:admin",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas(
                "admin", admin_pw, sasl_users
            ),
            "listener.name.controller.plain.sasl.jaas.config": _jaas(
                "admin", admin_pw, {"admin": admin_pw}
            ),
        }
    lines = [
        "# Written by ingest.local_broker for the local development broker; rewritten each start."
    ]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def find_java() -> str:
    """The `java` executable: `$JAVA_HOME/bin/java` or the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("java not found: install a JDK 17+")
    return found


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
