"""Prometheus metrics of one application instance (its own registry, so apps never collide).

Every HTTP response is counted by status and timed, labelled by route template
(`/photos/{photo_id}`, not each id, so the label set stays small): `count_response`, called by
app/http/front_door.py. The GraphQL endpoint records its operations and batch sizes with
`record_operations`; the rate limit its refusals with `record_throttled`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from graphql import OperationType
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from app.http.tallies import CounterTally, HistogramTally, Tallied

if TYPE_CHECKING:
    from app.db.job_stats import JobStats
    from app.http.planning import Planned

logger = logging.getLogger("batchery")

# `*_created` timestamps double the exposition for no use here. (prometheus_client leaves this
# function unannotated, hence the ignore; mypy strict refuses the call otherwise.)
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)
# Static operation cost (schema/cost): a hello is 0, a small page ~100, the default limit 500k.
COST_BUCKETS = (0, 10, 100, 1_000, 10_000, 100_000, 500_000, 1_000_000, 10_000_000)
UNMATCHED_PATH = "unmatched"


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
            "GraphQL operations answered, by operation type (query, mutation, unknown when it "
            "could not be told) and outcome (ok; error: ran with errors; rejected: never ran).",
            ["type", "outcome"],
            registry=None,
        )
        self._graphql_operations = Tallied(self.graphql_operations, self.registry)
        self.graphql_operations_stopped = Counter(
            "batchery_graphql_operations_stopped",
            "GraphQL operations stopped before their end by a runtime guard, by operation type and "
            "reason (timeout: past BATCHERY_EXECUTION_TIMEOUT_SECONDS; cancelled: the client "
            "disconnected; node_limit: the result outgrew BATCHERY_MAX_RESULT_NODES).",
            ["type", "reason"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "batchery_http_requests",
            "HTTP requests answered, by status code.",
            ["status"],
            registry=None,
        )
        self._http_requests = Tallied(self.http_requests, self.registry)
        self.request_duration = Histogram(
            "batchery_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self._request_duration = Tallied(self.request_duration, self.registry)
        self.auth_refusals = Counter(
            "batchery_auth_refusals",
            "Requests refused for their credential (UNAUTHENTICATED, 401) and operations or REST "
            "calls refused for a missing scope (FORBIDDEN).",
            ["code"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "batchery_graphql_batch_size",
            "Operations per GraphQL HTTP request (1 for a single operation).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=None,
        )
        self._batch_size = Tallied(self.batch_size, self.registry)

        self.operation_cost = Histogram(
            "batchery_graphql_operation_cost",
            "Static cost of each GraphQL operation that validated (schema/cost), before it "
            "runs or is refused.",
            buckets=COST_BUCKETS,
            registry=None,
        )
        self._operation_cost = Tallied(self.operation_cost, self.registry)
        self.cost_refusals = Counter(
            "batchery_graphql_cost_refused_operations",
            "GraphQL operations refused for their cost before running, by the limit they met "
            "(operation: BATCHERY_MAX_OPERATION_COST; request: BATCHERY_MAX_REQUEST_COST).",
            ["limit"],
            registry=self.registry,
        )

        self.throttled_requests = Counter(
            "batchery_throttled_requests",
            "Requests refused by the rate limit (429), by API (graphql, rest).",
            ["api"],
            registry=self.registry,
        )
        self.throttled_operations = Counter(
            "batchery_throttled_operations",
            "Operations of the requests refused by the rate limit, by API: GraphQL operations; "
            "REST calls (each call of a /api/batch).",
            ["api"],
            registry=self.registry,
        )
        self.rate_limit_storage_errors = Counter(
            "batchery_rate_limit_storage_errors",
            "Rate-limit checks that failed in the storage (Redis down): those requests ran "
            "unlimited.",
            registry=self.registry,
        )

        # Bulk jobs: read from the jobs table at each scrape (`jobs_source`), so every API
        # process reports the same figures wherever the jobs run (embedded or `batchery worker`).
        self.jobs = Gauge(
            "batchery_jobs",
            "Bulk jobs in the jobs table, by status.",
            ["status"],
            registry=self.registry,
        )
        self.jobs_waiting = Gauge(
            "batchery_jobs_queue_depth",
            "Bulk jobs waiting for a worker: new ones, and those whose worker's lease ran out.",
            registry=self.registry,
        )
        self.jobs_records = _TableCounter(
            "batchery_jobs_records_processed",
            "Records of bulk jobs committed (succeeded or failed), all jobs ever: rate() of it "
            "is records per second.",
        )
        self.registry.register(self.jobs_records)
        self.jobs_source: Callable[[], Awaitable[JobStats]] | None = None
        # The metrics every request touches are counted by tallies (app/http/tallies.py), one
        # per label value: `labels()` takes a lock and validates its arguments each time.
        self._by_status: dict[int, CounterTally] = {}
        self._by_path: dict[str | None, HistogramTally] = {}
        self._by_operation: dict[tuple[OperationType | None, str], CounterTally] = {}
        self._batch_sizes = self._batch_size.histogram()
        self._costs = self._operation_cost.histogram()

    def count_response(self, status: int, path: str | None, seconds: float) -> None:
        """One HTTP response: its status, and its time under its route template (None: no route
        matched)."""
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self._http_requests.counter(str(status))
        counter.inc()
        histogram = self._by_path.get(path)
        if histogram is None:
            histogram = self._by_path[path] = self._request_duration.histogram(
                path or UNMATCHED_PATH
            )
        histogram.observe(seconds)

    async def refresh_jobs(self) -> None:
        if self.jobs_source is None:
            return
        try:
            stats = await self.jobs_source()
        except Exception as error:
            # The figures stay as last read; the scrape itself must not fail with the database.
            logger.warning("metrics: could not read the jobs table (%s)", error)
            return
        from app.bulk.jobs.model import JobStatus

        for status in JobStatus:
            self.jobs.labels(status.value).set(stats.by_status.get(status, 0))
        self.jobs_waiting.set(stats.waiting)
        self.jobs_records.value = stats.records_processed

    def record_throttled(self, api: str, operations: int) -> None:
        self.throttled_requests.labels(api).inc()
        self.throttled_operations.labels(api).inc(operations)

    def count_rate_limit_storage_error(self) -> None:
        self.rate_limit_storage_errors.inc()

    def count_statement(self, statement: str) -> None:
        self.db_statements.inc()

    def record_operations(self, outcomes: Iterable[tuple[OperationType | None, str]]) -> None:
        """One `(type, outcome)` per operation of a GraphQL request."""
        size = 0
        for kind, outcome in outcomes:
            size += 1
            counter = self._by_operation.get((kind, outcome))
            if counter is None:
                label = kind.value if kind is not None else "unknown"
                counter = self._by_operation[kind, outcome] = self._graphql_operations.counter(
                    label, outcome
                )
            counter.inc()
        self._batch_sizes.observe(size)

    def record_stopped(self, stopped: Iterable[tuple[OperationType | None, str]]) -> None:
        """One `(type, reason)` per operation a runtime guard stopped."""
        for kind, reason in stopped:
            label = kind.value if kind is not None else "unknown"
            self.graphql_operations_stopped.labels(label, reason).inc()

    def record_costs(self, planned: Iterable[Planned]) -> None:
        """The requested cost of each operation that has one; those over the operation limit."""
        refused = 0
        costs = self._costs
        for item in planned:
            outcome = item.outcome
            if item.estimate is not None:
                costs.observe(item.estimate.requested)
            elif outcome is not None and outcome.cost is not None:  # refused before validation
                costs.observe(outcome.cost.requested)
            if outcome is not None and outcome.code == "COST_LIMIT_EXCEEDED":
                refused += 1
        if refused:
            self.cost_refusals.labels("operation").inc(refused)

    async def endpoint(self, request: Request) -> Response:
        await self.refresh_jobs()
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _TableCounter(Collector):
    """A counter whose value is read from the database (a sum that only grows), not counted by
    this process: Prometheus gets the counter type, so rate() and resets work as usual."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.value)
