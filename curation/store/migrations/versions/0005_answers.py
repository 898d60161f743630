"""answers: every model's answer to every test item, with its prompt hash and decoding

Revision ID: 0005_answers
Revises: 0003_security
"""

import sqlalchemy as sa
from alembic import op

import curation.store.schema

revision = "0005_answers"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=512), nullable=False),
        sa.Column("testset", sa.String(length=256), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("decoding_hash", sa.String(length=64), nullable=False),
        sa.Column("decoding", sa.JSON(), nullable=False),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(length=16), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", curation.store.schema.UTCDateTime(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_id", "testset", "item_id", "decoding_hash", name="uq_answers_model_item_decoding"),
    )
    op.create_index("ix_answers_testset_item", "answers", ["testset", "item_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_answers_testset_item", table_name="answers")
    op.drop_table("answers")
