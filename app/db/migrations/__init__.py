"""Alembic's script directory for Batchery's tables: `env.py`, the revision template, and
`versions/`, one module per schema change. Run them with `batchery migrate` (app/db/migrate.py
configures Alembic in code: no alembic.ini, nothing read from the working directory)."""
