"""Health for operators: ``/healthz``, ``/readyz`` and ``/metrics``, and systemd notifications.

Why: a daemon that runs but fires nothing (database gone, a job failing every time) must be
visible to a load balancer, to Prometheus and to systemd's watchdog, not only in its log.
``/healthz`` says the process answers; ``/readyz`` says it is doing its job (database
reachable, definitions loaded, a sweep succeeded within two intervals, no job failing again
and again), else 503 with the reasons as JSON. The server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from icsflow.workflow.daemon.metrics import DaemonMetrics
from icsflow.workflow.logging import get_logger

_log = get_logger("icsflow.daemon")
FAILING_AFTER = 3  # a job failing this many times in a row makes the daemon unready


class Health:
    """The facts readiness is judged on, updated by the daemon's jobs (thread-safe)."""

    def __init__(self, sweep_seconds: float, *, probe: Callable[[], str | None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.sweep_seconds = sweep_seconds
        self._probe = probe or (lambda: None)
        self._wall = wall
        self._lock = threading.Lock()
        self.definitions_loaded = False
        self.last_sweep_at: float | None = None
        self.failures: dict[str, int] = {}

    def swept(self) -> None:
        with self._lock:
            self.last_sweep_at = self._wall()

    def job_succeeded(self, job: str) -> None:
        with self._lock:
            self.failures[job] = 0

    def job_failed(self, job: str) -> int:
        """Count one more failure in a row of ``job``; returns the count."""
        with self._lock:
            self.failures[job] = self.failures.get(job, 0) + 1
            return self.failures[job]

    def reasons(self) -> list[str]:
        """Why the daemon is not ready (empty when it is)."""
        found: list[str] = []
        problem = self._probe()
        if problem:
            found.append(f"database unreachable: {problem}")
        with self._lock:
            if not self.definitions_loaded:
                found.append("definitions not loaded")
            limit = 2 * self.sweep_seconds
            if self.last_sweep_at is None:
                found.append("no timer sweep has succeeded yet")
            else:
                age = self._wall() - self.last_sweep_at
                if age > limit:
                    found.append(f"last timer sweep succeeded {age:.0f}s ago "
                                 f"(more than two intervals, {limit:g}s)")
            found += [f"job {job} failed {n} times in a row"
                      for job, n in sorted(self.failures.items()) if n >= FAILING_AFTER]
        return found

    def healthy_sweep(self) -> bool:
        """A sweep just succeeded and nothing else is failing repeatedly (the watchdog)."""
        with self._lock:
            return self.definitions_loaded and not any(
                n >= FAILING_AFTER for n in self.failures.values())


class HealthServer:
    """A small threaded HTTP server in the daemon; stopped with the daemon."""

    def __init__(self, host: str, port: int, health: Health, metrics: DaemonMetrics) -> None:
        self.health = health
        self.metrics = metrics
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="icsflow-health", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
        self._server.server_close()

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        route = path.split("?", 1)[0].rstrip("/") or "/"
        if route == "/healthz":
            return 200, "application/json", _json({"status": "ok"})
        if route == "/readyz":
            reasons = self.health.reasons()
            self.metrics.ready.set(0 if reasons else 1)
            if reasons:
                return 503, "application/json", _json({"status": "unready",
                                                       "reasons": reasons})
            return 200, "application/json", _json({"status": "ready"})
        if route == "/metrics":
            self.metrics.ready.set(0 if self.health.reasons() else 1)
            for job, count in list(self.health.failures.items()):
                self.metrics.job_failures.labels(job=job).set(count)
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        return 404, "application/json", _json({"error": "not found",
                                               "paths": ["/healthz", "/readyz", "/metrics"]})


def _json(value: Mapping[str, Any]) -> bytes:
    return (json.dumps(value) + "\n").encode("utf-8")


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            try:
                status, kind, body = server.respond(self.path)
            except Exception as exc:  # noqa: BLE001 - a probe must get an answer
                _log.exception("health_request_failed", error=type(exc).__name__)
                status, kind, body = 500, "application/json", _json({"error": "internal"})
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            # Not stderr (http.server's default): every probe would be a line.
            _log.debug("health_request", request=self.requestline, status=args[1:2])

    return Handler


def sd_notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd (``Type=notify``) ``READY=1``/``WATCHDOG=1``/``STOPPING=1`` when
    ``NOTIFY_SOCKET`` is set; a no-op otherwise. Never raises: systemd is a helper."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode("ascii"))
    except OSError as exc:
        _log.warning("sd_notify_failed", message=message, error=type(exc).__name__)
        return False
    return True


__all__ = ["Health", "HealthServer", "sd_notify", "FAILING_AFTER"]
