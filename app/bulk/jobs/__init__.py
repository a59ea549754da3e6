"""Bulk jobs: very large batches run in the background, in chunks, with live progress.

`model` says what a job is; the data layer keeps its row (`app.db.jobs`); `runner` executes one
through the bulk engine; `progress` carries its live events between processes; `queue` hands it
to taskiq. Knows nothing of GraphQL or HTTP (README: Bulk jobs).
"""
