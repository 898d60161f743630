"""jobs: dataset and subject columns, slot resource, lease (fencing token)

Revision ID: 0002_jobs
Revises: 0005_answers
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_jobs"
down_revision = "0005_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("resource", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key("fk_jobs_dataset_id", "datasets", ["dataset_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index(batch_op.f("ix_jobs_dataset_id"), ["dataset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_jobs_subject"), ["subject"], unique=False)
        batch_op.create_index("ix_jobs_resource_status", ["resource", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_resource_status")
        batch_op.drop_index(batch_op.f("ix_jobs_subject"))
        batch_op.drop_index(batch_op.f("ix_jobs_dataset_id"))
        batch_op.drop_constraint("fk_jobs_dataset_id", type_="foreignkey")
        batch_op.drop_column("lease")
        batch_op.drop_column("resource")
        batch_op.drop_column("subject")
        batch_op.drop_column("dataset_id")
