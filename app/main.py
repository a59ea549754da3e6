"""The Starlette application: routes, and the resources that live as long as the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app.db.engine import create_engine
from app.db.migrate import prepare
from app.db.reads import Reader
from app.db.statements import listen_statements
from app.db.transactions import set_write_timeout
from app.http.access import REQUEST_ID_HEADER, unauthenticated_response
from app.http.auth_failures import GuardedKeyBackend
from app.http.front_door import FrontDoor
from app.http.graphiql import STATIC_PATH, VENDOR_DIR
from app.http.graphql import ROUTE_METHODS, GraphQLApp
from app.http.health import healthz, readyz
from app.http.identity import IdentitySource
from app.http.jwt_auth import JwtConfig, JwtVerifier
from app.http.metrics import Metrics
from app.http.persisted import document_store
from app.http.photos import photo_endpoint
from app.http.rest import rest_mount
from app.http.subscriptions import SubscriptionSocket
from app.jobs_settings import jobs_service
from app.memory import freeze_startup_objects
from app.ratelimit import RateLimiter
from app.settings import Settings
from app.uploads import sweep
from schema import schema
from schema.execution import Executor

logger = logging.getLogger("batchery")


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> Starlette:
    """The application. Pass `engine` to serve a database you own (tests, embedding): it is then
    neither created, migrated nor disposed here. Without one, the database is brought to the
    newest revision at start (or refused: BATCHERY_MIGRATE_ON_START)."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    # Parsed here, so a bad rate-limit setting stops the start with a message naming it.
    identity_source = IdentitySource.parse(settings.rate_limit_key)
    # Built here for the same reason: a JWT setting that cannot work stops the start.
    jwt_config = JwtConfig.from_settings(settings)
    tokens = JwtVerifier(jwt_config) if jwt_config is not None else None
    documents = document_store(settings)  # a trusted manifest that cannot be read stops here
    rate_limiter = (
        RateLimiter.from_settings(settings, metrics.count_rate_limit_storage_error)
        if settings.rate_limit_enabled
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_engine = engine is None
        db = engine or create_engine(settings.resolved_database_url, pre_ping=settings.db_pre_ping)
        set_write_timeout(db, settings.db_write_timeout_seconds)
        if own_engine:
            await prepare(db, migrate=settings.migrate_on_start)
        # Spool directories of requests that died with their process (kill -9) go now; those of
        # live requests in other workers sharing the directory are locked and stay.
        swept = await asyncio.to_thread(sweep, settings.resolved_upload_spool_dir)
        if swept:
            logger.info("removed %d upload spool directories of killed requests", len(swept))
        # Counted from here on: the metric is about serving requests, not start-up checks.
        stop_counting = listen_statements(db, metrics.count_statement)
        app.state.engine = db
        app.state.reader = Reader(db)
        # Bulk jobs: run here (embedded) or only enqueued for `batchery worker` (Redis).
        jobs = jobs_service(settings, db)
        await jobs.start()
        app.state.jobs = jobs
        metrics.jobs_source = jobs.stats
        if rate_limiter is not None:
            await rate_limiter.start()
        if settings.gc_freeze:
            freeze_startup_objects()
        announce_access(settings, jwt_config)
        try:
            yield
        finally:
            # Running jobs stop between two statements and are handed back (a restarted or
            # another process resumes them): this process's requests have already drained.
            metrics.jobs_source = None
            await jobs.stop()
            stop_counting()
            if rate_limiter is not None:
                await rate_limiter.close()
            await documents.close()
            if own_engine:
                await db.dispose()

    routes: list[BaseRoute] = [
        # Newcomers open the bare address first: send them to GraphiQL and the API.
        Route("/", lambda request: RedirectResponse("/graphql"), methods=["GET"]),
        Route("/graphql", GraphQLApp(), methods=ROUTE_METHODS, name="graphql_endpoint"),
        # Subscriptions over WebSocket (graphql-transport-ws); over SSE they take the Route.
        WebSocketRoute("/graphql", SubscriptionSocket(settings)),
        Route("/photos/{photo_id:int}", photo_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.endpoint, methods=["GET"]),
        rest_mount(),
        Mount(STATIC_PATH, StaticFiles(directory=VENDOR_DIR, check_dir=False), name="graphiql"),
    ]
    # Request id, metrics, CORS, database faults and authentication, in one layer.
    front_door = Middleware(
        FrontDoor,
        metrics=metrics,
        backend=GuardedKeyBackend(settings, tokens),
        on_error=unauthenticated_response,
        # Straight to the GraphQL route (app/http/front_door.py): the hot path skips two layers.
        direct_path="/graphql",
        cors={
            "allow_origins": settings.cors_origins,
            "allow_methods": settings.cors_methods,
            "allow_headers": settings.cors_headers,
            "expose_headers": [REQUEST_ID_HEADER, "WWW-Authenticate", "Retry-After"],
            "max_age": settings.cors_max_age_seconds,
        },
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[front_door])
    app.state = AppState()
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.executor = Executor(schema, settings)
    app.state.documents = documents
    app.state.identity_source = identity_source
    app.state.rate_limiter = rate_limiter
    app.state.tokens = tokens
    return app


class AppState(State):
    """`app.state`, its values also kept as plain attributes. Starlette's `State` finds each one
    through a failed attribute look-up, then `__getattr__`: ~1 us a read, and a GraphQL request
    reads a dozen (docs/performance.md, issue 12 round three)."""

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)


def announce_access(settings: Settings, jwt_config: JwtConfig | None) -> None:
    if settings.auth == "open":
        logger.warning(
            "AUTH IS OPEN (BATCHERY_AUTH=open): requests without an API key may read AND WRITE "
            "everything, bulk deletes included. Requests with a key are held to its scopes. "
            "Set BATCHERY_AUTH=required for anything but local development."
        )
    else:
        logger.info("BATCHERY_AUTH=required: every request needs Authorization: Bearer <key>")
    if jwt_config is not None:
        logger.info(
            "JWT: accepting %s tokens from issuer %s for audience %s, keys from %s",
            "/".join(jwt_config.algorithms),
            jwt_config.issuer,
            " or ".join(jwt_config.audience),
            jwt_config.keys.description,
        )
    if settings.cors_origins:
        logger.info("CORS: allowed origins %s", ", ".join(settings.cors_origins))
