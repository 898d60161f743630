"""judge runs and judgments (pairwise judges, both orders)

Revision ID: 0006_judgments
Revises: 0007_studies
"""

import sqlalchemy as sa
from alembic import op

import curation.store.schema

revision = "0006_judgments"
down_revision = "0007_studies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judge_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("judge", sa.String(length=32), nullable=False),
        sa.Column("judge_model", sa.String(length=256), nullable=False),
        sa.Column("judge_version", sa.String(length=64), nullable=False),
        sa.Column("model_a", sa.String(length=256), nullable=False),
        sa.Column("model_b", sa.String(length=256), nullable=False),
        sa.Column("testset", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", curation.store.schema.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "judgments",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("order_shown", sa.String(length=2), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=256), nullable=True),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("answer_a", sa.Text(), nullable=False),
        sa.Column("answer_b", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("winner", sa.String(length=4), nullable=True),
        sa.Column("score_a", sa.Float(), nullable=True),
        sa.Column("score_b", sa.Float(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("call_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", curation.store.schema.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["judge_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "item_id", "order_shown"),
    )


def downgrade() -> None:
    op.drop_table("judgments")
    op.drop_table("judge_runs")
