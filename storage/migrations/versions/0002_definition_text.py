"""Keep each definition version's text, so cases run on after its file was replaced.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.add_column(sa.Column("source_text", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("definitions") as batch:
        batch.drop_column("source_text")
