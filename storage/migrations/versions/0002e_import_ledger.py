"""The import ledger: which extract rows ``icsflow import`` has applied (idempotent imports).

Revision ID: 0005_import_ledger
Revises: 0004_child_family
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from icsflow.storage.tables import UTCDateTime

revision = "0005_import_ledger"
down_revision = "0005_history_cancelled_timers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_ledger",
        sa.Column("row_key", sa.String(300), primary_key=True),
        sa.Column("instance_id", sa.String(36), nullable=True),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("definition", sa.String(100), nullable=False),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("happened_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_import_ledger_instance", "import_ledger", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_import_ledger_instance", table_name="import_ledger")
    op.drop_table("import_ledger")
