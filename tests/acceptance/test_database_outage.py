"""Acceptance: the daemon survives its database going away and recovers by itself."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from acceptance_support import SmtpServer, free_port, make_workspace, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
LATE = "2012-01-20T10:00:00+00:00"


class TcpProxy:
    """A loopback forwarder in front of PostgreSQL that the test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut every open one (as a network outage would)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_database_down_then_up_the_daemon_keeps_running_and_delivers(
        tmp_path: Path, smtp: SmtpServer) -> None:
    base = os.environ.get("ICSFLOW_TEST_PG")
    if not base:
        pytest.skip("ICSFLOW_TEST_PG is not set")
    import sqlalchemy

    name = f"icsflow_outage_{uuid.uuid4().hex[:8]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    direct = sqlalchemy.engine.make_url(base).set(database=name)
    proxy = TcpProxy((direct.host or "127.0.0.1", direct.port or 5432))
    proxy.up()
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    try:
        ws = make_workspace(tmp_path, via_proxy.render_as_string(hide_password=False), smtp.url)
        ws.icsflow("db", "upgrade")
        daemon = ws.spawn("run", "--now", LATE)
        log = lambda: "".join(p.read_text() for p in tmp_path.glob("daemon-*.log"))  # noqa: E731
        case_mail = lambda: [r for r in smtp.received  # noqa: E731
                             if str(r.message["Subject"]).startswith("Alert for O-")]
        try:
            wait_for(lambda: "daemon_started" in log(), 20, "the daemon to start")
            proxy.down()
            wait_for(lambda: "database_unavailable" in log(), 20, "the outage to be noticed")
            assert daemon.poll() is None, "the daemon must keep running without its database"
            proxy.up()
            ws.start_cases(["O-1", "O-2"])  # work arriving once the database is back
            wait_for(lambda: len(case_mail()) >= 4, 40, "a reminder and an escalation each")
            assert "database_recovered" in log()
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=10) == 0
        ids = smtp.message_ids()  # the daily digests are in here too
        assert len(ids) == len(set(ids))
        assert len(case_mail()) == 4
    finally:
        proxy.down()
        time.sleep(0.1)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
