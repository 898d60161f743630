"""studies: the human study (studies, study_items, study_votes, study_reservations)

Revision ID: 0007_studies
Revises: 0001
Create Date: 2026-11-29 18:30:06.919228
"""

import sqlalchemy as sa
from alembic import op

import curation.store.schema

revision = '0007_studies'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('studies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('model', sa.String(length=256), nullable=False),
    sa.Column('baseline', sa.String(length=256), nullable=False),
    sa.Column('votes_per_item', sa.Integer(), nullable=False),
    sa.Column('voters', sa.JSON(), nullable=False),
    sa.Column('repeat_share', sa.Float(), nullable=False),
    sa.Column('lease_s', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', curation.store.schema.UTCDateTime(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('study_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('item_key', sa.String(length=256), nullable=False),
    sa.Column('category', sa.String(length=256), nullable=False),
    sa.Column('testset', sa.String(length=256), nullable=False),
    sa.Column('instruction', sa.Text(), nullable=False),
    sa.Column('input', sa.Text(), nullable=False),
    sa.Column('model_answer', sa.Text(), nullable=False),
    sa.Column('baseline_answer', sa.Text(), nullable=False),
    sa.Column('votes', sa.Integer(), nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('study_id', 'item_key', name='uq_study_items_key')
    )
    with op.batch_alter_table('study_items', schema=None) as batch_op:
        batch_op.create_index('ix_study_items_queue', ['study_id', 'taken', 'position'], unique=False)

    op.create_table('study_reservations',
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('voter', sa.String(length=128), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('model_shown_as', sa.String(length=1), nullable=False),
    sa.Column('is_repeat', sa.Boolean(), nullable=False),
    sa.Column('reserved_at', curation.store.schema.UTCDateTime(), nullable=False),
    sa.Column('expires_at', curation.store.schema.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['study_items.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('study_id', 'voter')
    )
    with op.batch_alter_table('study_reservations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_reservations_expires_at'), ['expires_at'], unique=False)

    op.create_table('study_votes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('voter', sa.String(length=128), nullable=False),
    sa.Column('choice', sa.String(length=8), nullable=False),
    sa.Column('model_shown_as', sa.String(length=1), nullable=False),
    sa.Column('verdict', sa.String(length=8), nullable=False),
    sa.Column('is_repeat', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('shown_at', curation.store.schema.UTCDateTime(), nullable=False),
    sa.Column('voted_at', curation.store.schema.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['study_items.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('item_id', 'voter', 'is_repeat', name='uq_study_votes_once')
    )
    with op.batch_alter_table('study_votes', schema=None) as batch_op:
        batch_op.create_index('ix_study_votes_voter', ['study_id', 'voter'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('study_votes', schema=None) as batch_op:
        batch_op.drop_index('ix_study_votes_voter')

    op.drop_table('study_votes')
    with op.batch_alter_table('study_reservations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_reservations_expires_at'))

    op.drop_table('study_reservations')
    with op.batch_alter_table('study_items', schema=None) as batch_op:
        batch_op.drop_index('ix_study_items_queue')

    op.drop_table('study_items')
    op.drop_table('studies')
