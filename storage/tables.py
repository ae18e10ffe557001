"""The tables, as SQLAlchemy 2.0 typed models. Every datetime is stored and returned aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY = rowid


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, also on SQLite (which keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class InstanceRow(Base):
    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    definition: Mapped[str] = mapped_column(String(100))
    definition_version: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    # 0004_child_family: the child (and family) from the council's case-management system, so
    # one child's processes can be read together and hear each other; identifiers only.
    child: Mapped[str | None] = mapped_column(String(200), index=True)
    family: Mapped[str | None] = mapped_column(String(200), index=True)
    __table_args__ = (Index("ix_instances_definition_state", "definition", "state"),)


class HistoryRow(Base):
    __tablename__ = "history"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"),
                                             index=True)
    event: Mapped[str] = mapped_column(String(100))
    from_state: Mapped[str | None] = mapped_column(String(100))
    to_state: Mapped[str] = mapped_column(String(100))
    actor_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))
    happened_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    # 0004: timers this transition cancelled before they fired, [{"name", "due_at"}]
    cancelled_timers: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class DeadlineRow(Base):
    __tablename__ = "deadlines"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(100))
    due_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    exact: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    met_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_deadlines_live_due", "due_at", postgresql_where=text("met_at IS NULL"),
              sqlite_where=text("met_at IS NULL")),
    )


class TimerRow(Base):
    __tablename__ = "timers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime]
    first_due_at: Mapped[datetime | None]
    action: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fired_at: Mapped[datetime | None]
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    __table_args__ = (
        # Finding due timers costs O(due): only pending rows are in this index.
        Index("ix_timers_pending_due", "due_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )


class OutboxRow(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    instance_id: Mapped[str | None] = mapped_column(
        ForeignKey("instances.id", ondelete="SET NULL"), index=True)
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(100))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    # 0003: one row per delivery channel. "email" rows are queued by the engine; a copy for
    # another channel ("webhook") is queued when its email is marked sent, carries the email's
    # Message-ID, and is retried and dead-lettered on its own.
    channel: Mapped[str] = mapped_column(String(20), default="email", server_default="email")
    message_id: Mapped[str | None] = mapped_column(String(300))
    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )


class DefinitionRow(Base):
    __tablename__ = "definitions"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime]
    source_text: Mapped[str | None] = mapped_column(Text)  # 0002: run old versions on
    __table_args__ = (UniqueConstraint("name", "version", name="uq_definitions_name_version"),)


__all__ = ["Base", "UTCDateTime", "InstanceRow", "HistoryRow", "DeadlineRow", "TimerRow",
           "OutboxRow", "DefinitionRow"]
