"""One outbox row per delivery channel: a webhook copy is retried on its own.

Revision ID: 0003_outbox_channel
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_outbox_channel"
down_revision = "0003_calendar_baselines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False,
                                   server_default="email"))
        batch.add_column(sa.Column("message_id", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("message_id")
        batch.drop_column("channel")
