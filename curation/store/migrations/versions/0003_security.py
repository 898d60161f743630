"""sign-in back-off and one-time setup tokens

Revision ID: 0003_security
Revises: 0004_models
"""

import sqlalchemy as sa
from alembic import op

import curation.store.schema

revision = "0003_security"
down_revision = "0004_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", curation.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "setup_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", curation.store.schema.UTCDateTime(), nullable=False),
        sa.Column("used_at", curation.store.schema.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("setup_tokens")
    op.drop_table("sign_in_failures")
