"""Prometheus metrics of one application instance (its own registry, so apps never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.db_statements = Counter(
            "batchery_db_statements",
            "SQL statements executed (transaction control excluded).",
            registry=self.registry,
        )
        self.graphql_operations = Counter(
            "batchery_graphql_operations",
            "GraphQL operations executed, by operation type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "batchery_http_requests",
            "HTTP requests answered, by status code.",
            ["status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "batchery_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "batchery_graphql_batch_size",
            "Operations per GraphQL HTTP request.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )

    def count_statement(self, statement: str) -> None:
        self.db_statements.inc()

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
