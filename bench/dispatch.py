"""Outbox dispatch throughput (not a test): ``python bench/dispatch.py [--pg URL] [-n N]``.

``N`` pending outbox rows delivered by the real ``Dispatcher`` (claim, build the message, send,
settle) to a Maildir and to a local SMTP server (aiosmtpd's ``Sink`` in its own process, so it
does not share our interpreter), beside two floors written with the standard library alone:

* **stdlib floor**: each message built with the ``email`` package (``EmailMessage``, the same
  headers and body) and then written or sent as below: what a plain stdlib program would do.
* **I/O floor**: the same bytes rendered by the ``email`` package before the clock starts, then
  only written or sent: the durable work alone.

Both floors do the dispatcher's durable work: per batch of 50, every file written to ``tmp/``,
fsynced and linked into ``new/`` from 8 threads at once (as ``MaildirNotifier`` does, so the
filesystem commits the fsyncs together), the tmp names unlinked, ``new/`` fsynced once (the
dispatcher's fsync policy); over SMTP, the messages sent on one ``smtplib`` connection. They
leave out the database (claim, per-message or per-batch settle), the Message-ID check against
``new/`` and ``cur/``, address validation and logging. Three rounds, interleaved, medians; a
fresh database and Maildir for each measurement.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("bench")]

import argparse
import logging
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from sqlalchemy import create_engine, insert, text

from icsflow.notifiers.maildir import MaildirNotifier
from icsflow.notifiers.smtp import SmtpNotifier
from icsflow.storage.db import create_db_engine, upgrade
from icsflow.storage.outbox import SqlOutbox
from icsflow.storage.tables import OutboxRow
from icsflow.workflow.clock import FakeClock
from icsflow.workflow.daemon.dispatch import Dispatcher

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

NOW = datetime(2024, 1, 8, 9, tzinfo=UTC)
SENDER = "icsflow@council.example"
BODY = ("The response to the Alert raised on 8 January is due on 22 January (10 working days).\n"
        "Please respond through the case record.\n") * 4
BATCH = 50


@contextmanager
def outbox_db(kind: str, pg: str | None, n: int) -> Iterator[str]:
    """A fresh database with ``n`` pending outbox rows, due now."""
    def fill(url: str) -> None:
        sql = create_db_engine(url)
        upgrade(sql)
        with sql.begin() as conn:
            conn.execute(insert(OutboxRow.__table__), [
                {"instance_id": None, "recipients": [f"team.manager.{k}@council.example"],
                 "subject": f"Alert ALERT-{k:05d}: response due 22 January", "body": BODY,
                 "template": "response_due", "urgent": False, "status": "pending",
                 "attempts": 0, "next_attempt_at": NOW, "idempotency_key": f"bench:{k}",
                 "created_at": NOW} for k in range(n)])
        # Fresh statistics, as the engine keeps them when it queues rows itself
        # (``SqlStore._refresh_statistics``): unanalyzed, PostgreSQL plans each claim as a
        # scan and sort of every pending row.
        with sql.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE outbox"))
        sql.dispose()

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/outbox.db"
            fill(url)
            yield url
        return
    assert pg
    schema = f"dispatch_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg else "?"
    try:
        url = f"{pg}{sep}options=-csearch_path%3D{schema}"
        fill(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def dispatcher_rate(url: str, notifier_for: Callable[[], object], n: int) -> float:
    sql = create_db_engine(url)
    notifier = notifier_for()
    dispatcher = Dispatcher(SqlOutbox(sql), notifier,  # type: ignore[arg-type]
                            office_hours=None, sender=SENDER, clock=FakeClock(NOW))
    t = time.perf_counter()
    result = dispatcher.dispatch_once(NOW)
    elapsed = time.perf_counter() - t
    getattr(notifier, "close", lambda: None)()
    sql.dispose()
    assert result.sent == n, result
    return n / elapsed


def _emails(n: int) -> list[EmailMessage]:
    out = []
    for k in range(n):
        msg = EmailMessage()
        msg["From"] = SENDER
        msg["To"] = f"team.manager.{k}@council.example"
        msg["Subject"] = f"Alert ALERT-{k:05d}: response due 22 January"
        msg["Message-ID"] = f"<outbox-{k}.bench@icsflow>"
        msg["Date"] = format_datetime(NOW)
        msg["X-Icsflow-Outbox-Id"] = str(k)
        msg["X-Icsflow-Template"] = "response_due"
        msg.set_content(BODY, subtype="plain", charset="utf-8")
        out.append(msg)
    return out


WRITERS = ThreadPoolExecutor(8)  # MaildirNotifier's default write_threads


def _store_durably(file: tuple[str, str, bytes]) -> None:
    tmp, final, data = file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.link(tmp, final)


def _write_batch(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """The dispatcher's durable work for one batch: write, fsync and link into new/ every
    file (8 at a time), unlink the tmp names, fsync new/ once."""
    paths = [(f"{folder}/tmp/{name}", f"{folder}/new/{name}", data) for name, data in files]
    list(WRITERS.map(_store_durably, paths))
    for tmp, _, _ in paths:
        os.unlink(tmp)
    fd = os.open(folder / "new", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def maildir_floor(folder: Path, n: int, *, prebuilt: bool) -> float:
    """Write the same files durably; ``prebuilt``: rendered before the clock starts."""
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ready = [m.as_bytes() for m in _emails(n)] if prebuilt else None
    t = time.perf_counter()
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        data = ready[start:start + count] if ready is not None else [
            m.as_bytes() for m in _emails(count)]
        _write_batch(folder, [(f"bench-{start + k}", d) for k, d in enumerate(data)])
    return n / (time.perf_counter() - t)


def _smtp_bytes(msg: EmailMessage) -> bytes:
    out = BytesIO()
    BytesGenerator(out).flatten(msg, linesep="\r\n")  # as smtplib's send_message
    return out.getvalue()


def smtp_floor(port: int, n: int, *, prebuilt: bool) -> float:
    """Send the same messages on one connection; ``prebuilt``: rendered beforehand."""
    ready = [_smtp_bytes(m) for m in _emails(n)] if prebuilt else None
    t = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        if ready is not None:
            for k, data in enumerate(ready):
                conn.sendmail(SENDER, [f"team.manager.{k}@council.example"], data)
        else:
            for msg in _emails(n):
                conn.send_message(msg)
    return n / (time.perf_counter() - t)


@contextmanager
def smtp_server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=None, help="PostgreSQL URL for the outbox (default: "
                        "SQLite only)")
    parser.add_argument("-n", type=int, default=1000, help="messages per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
    print(f"{args.n} emails per measurement, {args.rounds} rounds (median); load "
          f"{os.getloadavg()[0]:.1f}")
    with smtp_server() as port:
        for kind in kinds:
            rates: dict[str, list[float]] = {k: [] for k in (
                "maildir", "maildir stdlib", "maildir io", "smtp", "smtp stdlib", "smtp io")}
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as d:
                    with outbox_db(kind, args.pg, args.n) as url:
                        rates["maildir"].append(dispatcher_rate(
                            url, lambda: MaildirNotifier(Path(d) / "mail"), args.n))
                    rates["maildir stdlib"].append(
                        maildir_floor(Path(d) / "floor", args.n, prebuilt=False))
                    rates["maildir io"].append(
                        maildir_floor(Path(d) / "io", args.n, prebuilt=True))
                    shutil.rmtree(d, ignore_errors=True)
                with outbox_db(kind, args.pg, args.n) as url:
                    rates["smtp"].append(dispatcher_rate(
                        url, lambda: SmtpNotifier("127.0.0.1", port), args.n))
                rates["smtp stdlib"].append(smtp_floor(port, args.n, prebuilt=False))
                rates["smtp io"].append(smtp_floor(port, args.n, prebuilt=True))
                print("  " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()),
                      flush=True)
            med = {k: statistics.median(v) for k, v in rates.items()}
            print(f"== outbox on {kind} (load now {os.getloadavg()[0]:.1f})")
            for channel, target in (("maildir", 2000), ("smtp", 300)):
                e, f, io = med[channel], med[f"{channel} stdlib"], med[f"{channel} io"]
                print(f"{channel:<8} dispatcher {e:6.0f}/s   stdlib floor {f:6.0f}/s "
                      f"({f / e:4.2f}x)   I/O floor {io:6.0f}/s ({io / e:4.2f}x)   "
                      f"target >= {target}/s: {'met' if e >= target else 'MISSED'}")


if __name__ == "__main__":
    main()
