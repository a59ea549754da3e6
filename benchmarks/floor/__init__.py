"""The floor: no GraphQL at all. A plain Starlette endpoint that recognises the benchmark's
queries, runs the same SQL (`app.db.reads.Reader`) and builds the JSON by hand with orjson."""
