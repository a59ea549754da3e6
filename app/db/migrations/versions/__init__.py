"""The revisions, oldest first by number. Add one with `batchery migrate --autogenerate -m "..."`
and read it before committing (README: Schema migrations)."""
