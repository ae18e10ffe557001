"""``icsflow serve`` under systemd ``Type=notify``: ``READY=1`` once the socket listens,
``WATCHDOG=1`` while the server answers its own ``/healthz``, ``STOPPING=1`` on the way out.

Why a probe and not a bare timer: a server whose event loop is stuck (a blocking call, a
deadlock) still has live threads, so a thread that only ticks would keep systemd's watchdog
happy while nobody gets a page. Here a thread asks ``GET /healthz`` over loopback every half
of ``WatchdogSec`` and tells systemd only when the answer is 200; a server that stops
answering is restarted by systemd after ``WatchdogSec``. Without ``NOTIFY_SOCKET`` (not under
systemd) every notification is a no-op, and without ``WATCHDOG_USEC`` no thread is started.
The notification itself is the daemon's ``sd_notify`` (standard library, never raises).
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Literal, TypedDict, Unpack

import uvicorn
from starlette.types import ASGIApp

from icsflow.workflow.daemon.health import sd_notify

# Wildcard listen addresses are probed on loopback of the same family.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of systemd's ``WatchdogSec``), or None when
    systemd asked for no watchdog or asked another process (``WATCHDOG_PID``)."""
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", "").strip() or 0)
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def healthz_probe(host: str, port: int, timeout: float) -> Callable[[], bool]:
    """A check that ``GET /healthz`` on ``host:port`` answers 200 within ``timeout`` s."""
    target = _LOOPBACK.get(host, host)

    def probe() -> bool:
        conn = http.client.HTTPConnection(target, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz", headers={"User-Agent": "icsflow-watchdog"})
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()
    return probe


class Watchdog:
    """A thread that sends ``WATCHDOG=1`` every ``interval`` s while ``probe()`` is true."""

    def __init__(self, probe: Callable[[], bool], interval: float,
                 notify: Callable[[str], object] = sd_notify) -> None:
        self._probe = probe
        self._interval = interval
        self._notify = notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="icsflow-watchdog",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self._probe():
                self._notify("WATCHDOG=1")


class NotifyingServer(uvicorn.Server):
    """uvicorn's server, telling systemd when it listens and when it stops."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.watchdog: Watchdog | None = None

    def bound(self) -> tuple[str, int]:
        """The (host, port) the first listening socket is bound to (port 0 resolved)."""
        address = self.servers[0].sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        host, port = self.bound()
        sd_notify(f"READY=1\nSTATUS=serving on {host}:{port}")
        interval = watchdog_interval()
        if interval is not None:
            self.watchdog = Watchdog(healthz_probe(host, port, timeout=min(interval, 5.0)),
                                     interval)
            self.watchdog.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        sd_notify("STOPPING=1")
        if self.watchdog is not None:
            self.watchdog.stop()
        await super().shutdown(sockets=sockets)


class ServerOptions(TypedDict, total=False):
    """``uvicorn.Config`` keywords (uvicorn's names and types) that ``server.server_config``
    leaves to its caller."""

    uds: str | None
    fd: int | None
    access_log: bool
    lifespan: Literal["auto", "on", "off"]
    root_path: str
    date_header: bool
    forwarded_allow_ips: list[str] | str | None
    backlog: int
    timeout_graceful_shutdown: int | None
    ssl_keyfile: str | None
    ssl_certfile: str | None
    ssl_keyfile_password: str | None


class ServeOptions(ServerOptions, total=False):
    """``serve_app``'s keywords: those and the limits ``server_config`` sets itself."""

    log_level: str | int | None
    proxy_headers: bool
    server_header: bool
    limit_concurrency: int | None
    timeout_keep_alive: int


def serve_app(app: ASGIApp, *, host: str, port: int, **options: Unpack[ServeOptions]) -> None:
    """``uvicorn.run(app, host=..., port=..., **options)`` for one process, with systemd's
    notifications; exits 3 (uvicorn's start-up failure) when the server never started."""
    serve(uvicorn.Config(app, host=host, port=port, **options))


def serve(config: uvicorn.Config) -> None:
    """Run a server of ``config`` with systemd's notifications (see ``serve_app``)."""
    server = NotifyingServer(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)


__all__ = ["serve", "serve_app", "ServerOptions", "ServeOptions", "NotifyingServer", "Watchdog",
           "healthz_probe", "watchdog_interval"]
