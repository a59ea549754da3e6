"""What every resolver finds on `info.context`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.reads import Reader
from app.ratelimit import RateLimitStatus
from app.settings import Settings
from loaders.field import LoaderRegistry
from schema.access import INTERNAL, Caller

if TYPE_CHECKING:
    from app.bulk.jobs.service import JobsService


@dataclass(slots=True)
class Context:
    engine: AsyncEngine
    reader: Reader
    settings: Settings
    loaders: LoaderRegistry
    # Whatever the transport wants resolvers to see (e.g. the HTTP request); opaque here.
    request: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Who is asking (schema/access.py); in-process callers are INTERNAL, never checked.
    caller: Caller = INTERNAL
    # The HTTP request's id (X-Request-Id), for the audit trail; None in-process.
    request_id: str | None = None
    # The client's rate-limit budget once this request was charged; None when limits are off.
    rate_limit: RateLimitStatus | None = None
    # What waits until the request's results and loaders are no longer held (the transport runs
    # it once the response is rendered); shared by every context of one request.
    # (None: nobody will; then nothing waits.)
    after_answer: list[Callable[[], None]] | None = None
    # The bulk jobs service (app.state.jobs) when this process serves jobs; None otherwise.
    jobs: JobsService | None = None

    @classmethod
    def create(
        cls,
        engine: AsyncEngine,
        settings: Settings,
        *,
        reader: Reader | None = None,
        loaders: LoaderRegistry | None = None,
        request: Any = None,
        caller: Caller = INTERNAL,
        request_id: str | None = None,
        rate_limit: RateLimitStatus | None = None,
        after_answer: list[Callable[[], None]] | None = None,
        jobs: JobsService | None = None,
    ) -> Context:
        if loaders is None:
            loaders = LoaderRegistry(settings.loader_max_batch_size)
            if after_answer is not None:  # the loaders are not needed past the answer
                after_answer.append(loaders.close)
        return cls(
            engine=engine,
            reader=reader if reader is not None else Reader(engine),
            settings=settings,
            loaders=loaders,
            request=request,
            caller=caller,
            request_id=request_id,
            rate_limit=rate_limit,
            after_answer=after_answer,
            jobs=jobs,
        )

    def renew_loaders(self) -> None:
        """Start over with empty loaders: what the current ones cached may predate a write.
        Operations already running keep the loaders they hold."""
        self.loaders = self.loaders.fresh()

    def cancel_loads(self, *, close: bool = True) -> None:
        """Cancel the batch loads this request still runs (all its loader sets, those of its
        mutations included); with `close`, those that would start later too."""
        self.loaders.inflight.cancel(close=close)

    def with_fresh_loaders(self) -> Context:
        """The same context with loaders of its own: what each mutation operation gets."""
        return Context(
            engine=self.engine,
            reader=self.reader,
            settings=self.settings,
            loaders=self.loaders.fresh(),
            request=self.request,
            extras=self.extras,
            caller=self.caller,
            request_id=self.request_id,
            rate_limit=self.rate_limit,
            after_answer=self.after_answer,
            jobs=self.jobs,
        )
