"""Server-side sessions, token expiry, relationship attributes, sign-in throttle, the audit chain.

Revision ID: 0007_sessions_audit
Revises: 0006_web_users

- ``web_users`` gains ``team``, ``service`` and ``email``: the relationships access is decided by.
- ``web_tokens`` gains ``expires_at`` and ``last_used_at`` (tokens made before have no expiry:
  ``icsflow user token NAME --list`` shows them, ``--revoke ID`` ends one).
- ``web_sessions``: one row per sign-in, keyed by the SHA-256 of the cookie's random id.
- ``web_devices``: browsers that signed in before (they skip the account-wide throttle).
- ``web_break_glass``: a manager's time-limited "open with a reason" on one child.
- ``web_login_throttle``: failed sign-ins per opaque key (hashes; no typed name in clear).
- ``audit_log`` and ``audit_head``: the hash-chained audit trail (``storage/audit.py``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_sessions_audit"
down_revision = "0006_web_users"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("web_users") as batch:
        batch.add_column(sa.Column("team", sa.String(200), nullable=True))
        batch.add_column(sa.Column("service", sa.String(200), nullable=True))
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
    with op.batch_alter_table("web_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "web_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False,
                  index=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("via", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("user_agent", sa.String(300), nullable=False, server_default=""),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(100), nullable=True),
    )
    op.create_table(
        "web_devices",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False,
                  index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_break_glass",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("session_digest", sa.String(64), nullable=False, index=True),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("child", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_login_throttle",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("next_allowed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", _ID, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("user_name", sa.String(200), nullable=False, index=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False, index=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("children", sa.Text, nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_log")
    op.drop_table("web_login_throttle")
    op.drop_table("web_break_glass")
    op.drop_table("web_devices")
    op.drop_table("web_sessions")
    with op.batch_alter_table("web_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
    with op.batch_alter_table("web_users") as batch:
        batch.drop_column("email")
        batch.drop_column("service")
        batch.drop_column("team")
