"""The Starlette application: routes, and the resources that live as long as the process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.db.engine import create_engine, create_tables
from app.db.reads import Reader
from app.db.statements import listen_statements
from app.http.graphiql import STATIC_PATH, VENDOR_DIR
from app.http.graphql import graphql_endpoint
from app.http.health import healthz, readyz
from app.http.metrics import Metrics
from app.settings import Settings
from schema import schema
from schema.execution import Executor

logger = logging.getLogger("batchery")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        await create_tables(engine)
        # Counted from here on: the metric is about serving requests, not start-up checks.
        stop_counting = listen_statements(engine, metrics.count_statement)
        app.state.engine = engine
        app.state.reader = Reader(engine)
        try:
            yield
        finally:
            stop_counting()
            await engine.dispose()

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        Mount(STATIC_PATH, StaticFiles(directory=VENDOR_DIR, check_dir=False), name="graphiql"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.executor = Executor(schema, settings)
    return app
