"""Sign-in through the council's identity provider (OpenID Connect).

Revision ID: 0008_oidc_sign_in
Revises: 0007_sessions_audit

- ``web_oidc_pending``: sign-ins sent to the provider and not yet back (the SHA-256 of their
  ``state``, the browser they belong to, the ``nonce`` and PKCE ``code_verifier``); taken once.
- ``web_oidc_identities``: which provider subject (issuer, ``sub``) is which icsflow user.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_oidc_sign_in"
down_revision = "0007_sessions_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_oidc_pending",
        sa.Column("state_digest", sa.String(64), primary_key=True),
        sa.Column("browser_digest", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_path", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "web_oidc_identities",
        sa.Column("issuer", sa.String(300), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False,
                  unique=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_oidc_identities")
    op.drop_table("web_oidc_pending")
