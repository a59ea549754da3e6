"""The baseline: stock Strawberry (`strawberry.asgi.GraphQL`, batching and multipart uploads on)
with aiodataloader loaders, serving the benchmark's subset of the schema from the same database
through the same SQL (`app.db.reads.Reader`). What a team would write without Batchery."""
