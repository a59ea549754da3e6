"""`make bench`: Batchery against stock Strawberry and a no-GraphQL floor (docs/performance.md)."""
