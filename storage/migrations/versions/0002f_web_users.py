"""Web users, API tokens and the access log of children's records (``icsflow serve``).

Revision ID: 0006_web_users
Revises: 0005_history_cancelled_timers

Passwords are stored only as argon2 hashes, API tokens only as SHA-256 digests (a token is 32
random bytes, so a fast digest is enough; the clear token is shown once by ``icsflow user token``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_web_users"
down_revision = "0005_import_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "web_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False,
                  index=True),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "web_access_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("user_name", sa.String(100), nullable=False, index=True),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("child", sa.String(200), nullable=True, index=True),
        sa.Column("instance_id", sa.String(36), nullable=True),
        sa.Column("what", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_access_log")
    op.drop_table("web_tokens")
    op.drop_table("web_users")
