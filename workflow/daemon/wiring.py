"""Wiring the daemon from configuration: database, mail channel, dispatcher, engine.

The one place where concrete storage and notifiers meet the core (the composition root).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine as SqlEngine

from icsflow.notifiers import LogNotifier, MaildirNotifier, SmtpNotifier, WebhookNotifier
from icsflow.notifiers.base import Notifier
from icsflow.storage.outbox import SqlOutbox
from icsflow.workflow.calendar import WorkingCalendar
from icsflow.workflow.clock import Clock
from icsflow.workflow.commands import policy_from, system_clock
from icsflow.workflow.config import Config, calendar_from
from icsflow.workflow.daemon.dispatch import Dispatcher
from icsflow.workflow.daemon.office_hours import OfficeHours
from icsflow.workflow.errors import ConfigurationError
from icsflow.workflow.logging import get_logger

_log = get_logger("icsflow.daemon")


def office_hours_from(config: Config, calendar: WorkingCalendar) -> OfficeHours:
    return OfficeHours(config.office_hours.start, config.office_hours.end, calendar)


def db_engine(config: Config, *, create: bool = True) -> SqlEngine:
    from icsflow.storage.db import create_db_engine

    return create_db_engine(config.database_url, create=create)


def build_channels(config: Config) -> tuple[Notifier, dict[str, Notifier]]:
    """The email channel (SMTP when a URL is configured, else the Maildir sink) and the copy
    channels by name (the optional webhook). Each channel's rows are delivered, retried and
    dead-lettered on their own by the dispatcher: a failing webhook never resends an email."""
    try:
        primary: Notifier
        if config.smtp.url:
            primary = SmtpNotifier.from_url(config.smtp.url, config.smtp.password,
                                            timeout=config.smtp.timeout)
        elif config.maildir == "-":
            primary = LogNotifier()
        else:
            primary = MaildirNotifier(config.maildir)
        copies: dict[str, Notifier] = {}
        if config.webhook is not None:
            copies["webhook"] = WebhookNotifier(config.webhook.url, config.webhook.secret or "")
        return primary, copies
    except (ValueError, OSError) as exc:
        raise ConfigurationError(f"mail channel: {exc}") from None


def build_notifier(config: Config) -> Notifier:
    """The email channel; building it (and the webhook) checks the settings at start-up."""
    primary, copies = build_channels(config)
    for copy in copies.values():
        copy.close()
    return primary


def describe_database(config: Config) -> str:
    """The database URL for a log line: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(config.database_url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparseable: say nothing that could be a secret
        return config.database_url.split("://", 1)[0] + "://..."


def describe_mail_channel(config: Config) -> str:
    """Where mail goes, for a log line: ``smtp://host:port``, ``maildir:/abs/path``, ``log``;
    ``+webhook`` when a copy goes to a webhook. No user names or passwords."""
    from pathlib import Path
    from urllib.parse import urlsplit

    if config.smtp.url:
        parts = urlsplit(config.smtp.url)
        port = f":{parts.port}" if parts.port else ""
        channel = f"{parts.scheme}://{parts.hostname or ''}{port}"
    elif config.maildir == "-":
        channel = "log"
    else:
        channel = f"maildir:{Path(config.maildir).resolve()}"
    return channel + ("+webhook" if config.webhook is not None else "")


def build_dispatcher(config: Config, *, calendar: WorkingCalendar | None = None,
                     clock: Clock | None = None, engine: SqlEngine | None = None,
                     ) -> tuple[Dispatcher, Callable[[], None]]:
    """A dispatcher wired from configuration, and the function that releases its resources."""
    cal = calendar or calendar_from(config)
    own_engine = engine is None
    sql = engine if engine is not None else db_engine(config)
    ensure_schema(sql)
    notifier, copies = build_channels(config)
    dispatcher = Dispatcher(
        SqlOutbox(sql), notifier, copies=copies, office_hours=office_hours_from(config, cal),
        sender=config.smtp.mail_from, clock=clock or system_clock(config),
        retry=policy_from(config).outbox,
        lease_seconds=config.intervals.lease_seconds,
        batch_size=config.intervals.outbox_batch, admin_address=config.admin_address)

    def close() -> None:
        notifier.close()
        for copy in copies.values():
            copy.close()
        if own_engine:
            sql.dispose()

    return dispatcher, close


def ensure_schema(sql: SqlEngine, *, create: bool = True) -> None:
    """Create or migrate the schema (once per daemon, under the set-up lock); ``create=False``:
    an empty database is ``NoDatabase``."""
    from icsflow.storage.db import ensure_schema as _ensure

    _ensure(sql, create=create)


def check_mail_channel(config: Config) -> None:
    """Find a bad mail setting at start-up, before any timer fires: the channel is built (an
    SMTP URL parsed) and a Maildir folder must be writable."""
    import os
    from pathlib import Path

    build_notifier(config).close()
    if not config.smtp.url and config.maildir != "-":
        folder = Path(config.maildir) / "tmp"
        if not os.access(folder, os.W_OK):
            raise ConfigurationError(f"mail channel: cannot write to Maildir {config.maildir}")
