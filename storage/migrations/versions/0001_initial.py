"""Initial schema: instances, history, deadlines, timers, outbox, definitions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from icsflow.storage.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    """The six tables in the order their foreign keys need; one helper per table."""
    _instances()
    _history()
    _deadlines()
    _timers()
    _outbox()
    _definitions()
    if op.get_context().dialect.name == "postgresql":
        # Timers churn (insert, fire, cancel): vacuum them far more often than the default 20%.
        op.execute("ALTER TABLE timers SET (autovacuum_vacuum_scale_factor = 0.01, "
                   "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 2)")
        op.execute("ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02)")


def _instances() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("definition", sa.String(100), nullable=False),
        sa.Column("definition_version", sa.Integer, nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("state", sa.String(100), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _ts("created_at"), _ts("updated_at"), _ts("started_at"), _ts("closed_at", True),
    )
    op.create_index("ix_instances_ref", "instances", ["ref"])
    op.create_index("ix_instances_definition_state", "instances", ["definition", "state"])


def _history() -> None:
    op.create_table(
        "history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(36),
                  sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("from_state", sa.String(100)),
        sa.Column("to_state", sa.String(100), nullable=False),
        sa.Column("actor_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        _ts("happened_at"), _ts("recorded_at"),
        sa.Column("note", sa.Text),
        sa.Column("changes", sa.JSON, nullable=False),
    )
    op.create_index("ix_history_instance_id", "history", ["instance_id"])


def _deadlines() -> None:
    op.create_table(
        "deadlines",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(36),
                  sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        _ts("due_at"),
        sa.Column("exact", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("met_at", True), _ts("created_at"),
    )
    op.create_index("ix_deadlines_instance_id", "deadlines", ["instance_id"])
    op.create_index("ix_deadlines_live_due", "deadlines", ["due_at"],
                    postgresql_where=sa.text("met_at IS NULL"),
                    sqlite_where=sa.text("met_at IS NULL"))


def _timers() -> None:
    op.create_table(
        "timers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(36),
                  sa.ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("deadline", sa.String(100)),
        sa.Column("state", sa.String(100)),
        _ts("due_at"), _ts("first_due_at", True),
        sa.Column("action", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(100)),
        _ts("claim_expires_at", True),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("fired_at", True),
        sa.Column("repeat_count", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("last_error", sa.Text),
        _ts("created_at"),
    )
    op.create_index("ix_timers_instance_id", "timers", ["instance_id"])
    op.create_index("ix_timers_pending_due", "timers", ["due_at", "id"],
                    postgresql_where=sa.text("status = 'pending'"),
                    sqlite_where=sa.text("status = 'pending'"))


def _outbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(36),
                  sa.ForeignKey("instances.id", ondelete="SET NULL")),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("next_attempt_at", True),
        sa.Column("last_error", sa.Text),
        sa.Column("idempotency_key", sa.String(300), nullable=False, unique=True),
        _ts("created_at"), _ts("sent_at", True),
        sa.Column("claimed_by", sa.String(100)),
        _ts("claim_expires_at", True),
    )
    op.create_index("ix_outbox_instance_id", "outbox", ["instance_id"])
    op.create_index("ix_outbox_pending", "outbox", ["next_attempt_at", "id"],
                    postgresql_where=sa.text("status = 'pending'"),
                    sqlite_where=sa.text("status = 'pending'"))


def _definitions() -> None:
    op.create_table(
        "definitions",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        _ts("registered_at"),
        sa.UniqueConstraint("name", "version", name="uq_definitions_name_version"),
    )


def downgrade() -> None:
    for table in ("definitions", "outbox", "timers", "deadlines", "history", "instances"):
        op.drop_table(table)
