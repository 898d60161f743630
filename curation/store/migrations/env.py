"""Alembic environment: runs on the connection the store hands over (see curation.store.db.migrate)."""

from alembic import context

from curation.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through curation.store.db.migrate(engine)")

# render_as_batch lets SQLite alter tables (it has no ALTER COLUMN) in later revisions.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
