"""The worker's HTTP endpoint: /metrics (Prometheus), /healthz (alive), /readyz (ready)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from consumers.metrics import UPDATE_LOCK

STALL_AFTER_S = 120.0
NOT_READY_REPORT_S = 30.0
"""A worker not ready this long says which flags are down, and again at this interval."""


@dataclass(slots=True)
class HealthState:
    """What /healthz and /readyz report; the worker loop updates it."""

    consent_loaded: bool = False
    residency_ok: bool = False
    broker_connected: bool = False
    assigned: bool = False
    stopping: bool = False
    consent_writer_ok: bool = True
    progressing: bool = True
    """False while transactions keep failing, or one stays open past the stuck limit."""
    last_loop: float = field(default_factory=time.monotonic)
    _unready_since: float | None = None
    _reported: float = 0.0

    def ready(self) -> bool:
        """Consent table loaded, sink reachable and passing residency, consumer assigned,
        consent writer running, commits progressing, not stopping."""
        return (
            self.consent_loaded
            and self.residency_ok
            and self.broker_connected
            and self.assigned
            and self.consent_writer_ok
            and self.progressing
            and not self.stopping
        )

    def down(self) -> list[str]:
        """Names of the readiness flags that are down (`stopping` is not one)."""
        flags = self.detail()
        del flags["ready"], flags["stopping"]
        return [name for name, up in flags.items() if not up]

    def overdue(self, now: float) -> list[str]:
        """The flags that are down when not ready for NOT_READY_REPORT_S, at most once per
        that interval; [] otherwise (ready, stopping, or reported recently)."""
        if self.ready() or self.stopping:
            self._unready_since = None
            return []
        if self._unready_since is None:
            self._unready_since = now
        if now - max(self._unready_since, self._reported) < NOT_READY_REPORT_S:
            return []
        self._reported = now
        return self.down()

    def alive(self) -> bool:
        """The loop went round recently."""
        return time.monotonic() - self.last_loop < STALL_AFTER_S

    def detail(self) -> dict[str, Any]:
        """The flags, for the endpoint body."""
        return {
            "ready": self.ready(),
            "consent_loaded": self.consent_loaded,
            "residency_ok": self.residency_ok,
            "broker_connected": self.broker_connected,
            "assigned": self.assigned,
            "consent_writer_ok": self.consent_writer_ok,
            "progressing": self.progressing,
            "stopping": self.stopping,
        }


def _handler(state: HealthState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                with UPDATE_LOCK:
                    exposition = generate_latest(REGISTRY)
                self._send(200, exposition, CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = state.alive()
                body = {"alive": ok}
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            elif path == "/readyz":
                detail = state.detail()
                code = 200 if detail["ready"] else 503
                self._send(code, json.dumps(detail).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no access log
            return

    return Handler


class HealthServer:
    """Serves the three endpoints from a daemon thread."""

    def __init__(self, state: HealthState, host: str, port: int) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(state))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Begin serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
