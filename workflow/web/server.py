"""Running the application under uvicorn with the connection limits a public server needs.

Why a protocol subclass: uvicorn's h11 protocol starts no timer when a connection opens, and
any byte received cancels its keep-alive timer, so a client that connects and sends nothing,
or sends a header line every few seconds, holds a connection for ever (slowloris). Here a
connection must finish its request line and headers within ``HEADER_TIMEOUT`` seconds of
connecting, or of the previous response; the timer is not renewed by partial data. An idle
kept-alive connection closes after ``KEEP_ALIVE`` seconds (uvicorn's own timer), a body that
stops arriving is cut by the gate (``gate.BODY_TIMEOUT``), headers are bounded to
``MAX_HEADER_BYTES`` and open connections to ``MAX_CONNECTIONS``.

Forwarded headers are never taken by uvicorn (``proxy_headers=False``): the gate believes them
only from ``web.trusted_proxies``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Unpack

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from icsflow.workflow.access import policy_from
from icsflow.workflow.errors import ConfigurationError
from icsflow.workflow.web.systemd_notify import ServerOptions, serve

if TYPE_CHECKING:
    from icsflow.workflow.config import Config
    from icsflow.workflow.web.context import WebSettings

HEADER_TIMEOUT = 10.0
KEEP_ALIVE = 5
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 500


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers."""

    header_timeout = HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    # uvicorn's H11Protocol narrows asyncio's BaseTransport to Transport the same way (and
    # ignores the same override error): a stream protocol is always given a Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers() and self._header_timer is None:
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()  # the headers are in: the request runs

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()


def server_config(app: ASGIApp, host: str, port: int,
                  **extra: Unpack[ServerOptions]) -> uvicorn.Config:
    """The uvicorn configuration ``icsflow serve`` runs with (tests and benches use it too)."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning", proxy_headers=False,
                          server_header=False, http=TimedH11Protocol,
                          timeout_keep_alive=KEEP_ALIVE,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          limit_concurrency=MAX_CONNECTIONS, **extra)


def run_server(app: ASGIApp, host: str, port: int) -> None:
    """``icsflow serve``: the server with its limits, telling systemd when it listens, while
    it answers and when it stops (``systemd_notify``)."""
    serve(server_config(app, host, port))


def apply_config(settings: WebSettings, config: Config,
                 environ: Mapping[str, str] | None = None) -> None:
    """The ``web`` and ``access`` sections of the configuration onto ``WebSettings``; with
    ``web.oidc``, the client secret from the variable ``client_secret_env`` names."""
    from datetime import timedelta

    settings.trusted_proxies = tuple(config.web.trusted_proxies)
    settings.session_idle = timedelta(minutes=config.web.session_idle_minutes)
    settings.session_absolute = timedelta(hours=config.web.session_absolute_hours)
    settings.access = policy_from(config.access)
    settings.break_glass_minutes = config.access.break_glass_minutes
    if settings.proxy_header and not settings.trusted_proxies:
        raise ConfigurationError(
            "--proxy-user-header: single sign-on through a proxy needs web.trusted_proxies "
            "(ICSFLOW_WEB_TRUSTED_PROXIES), the proxy's address; no peer is trusted by default")
    settings.base_url = config.web.base_url
    settings.oidc = oidc = config.web.oidc
    if oidc is not None:
        secret = (os.environ if environ is None else environ).get(oidc.client_secret_env, "")
        if not secret.strip():
            raise ConfigurationError(
                f"{oidc.client_secret_env} (web.oidc.client_secret_env): not set; the identity "
                f"provider's client secret for client {oidc.client_id!r} comes from this "
                "environment variable (in /etc/icsflow/icsflow.env)")
        settings.oidc_client_secret = secret.strip()


__all__ = ["TimedH11Protocol", "server_config", "run_server", "apply_config",
           "HEADER_TIMEOUT", "KEEP_ALIVE", "MAX_HEADER_BYTES", "MAX_CONNECTIONS"]
