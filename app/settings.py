"""Settings, read once from `BATCHERY_*` environment variables and checked before anything starts.

Every field below is documented in the README's configuration table; `Settings.from_env` is the
only place that reads the environment, so tests build `Settings(...)` directly. Whichever way a
`Settings` is built, each field is checked against what its annotation allows (a type, and for
numbers a bound such as `Positive`), and a refusal is one `SettingsError` line naming the
variable, the value and what is allowed. A new setting declares its bound in its annotation:

    request_timeout_seconds: PositiveFloat = 30.0
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

PREFIX = "BATCHERY_"

BatchMutations = Literal["concurrent", "serial"]
# uvicorn's levels; anything else ends in a KeyError deep inside uvicorn.
AuthMode = Literal["open", "required"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class SettingsError(ValueError):
    """A `BATCHERY_*` variable holds a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class AtLeast:
    """A number's lower bound: `Annotated[int, AtLeast(1)]`."""

    minimum: float

    def check(self, variable: str, value: Any) -> None:
        if value < self.minimum:
            raise SettingsError(
                f"{variable} must be at least {_number(self.minimum)}, got {value!r}"
            )


@dataclass(frozen=True, slots=True)
class Above:
    """A strict lower bound, for durations: `Annotated[float, Above(0)]`."""

    minimum: float

    def check(self, variable: str, value: Any) -> None:
        if value <= self.minimum:
            raise SettingsError(
                f"{variable} must be more than {_number(self.minimum)}, got {value!r}"
            )


@dataclass(frozen=True, slots=True)
class AtMost:
    """A number's upper bound: `Annotated[int, AtLeast(1), AtMost(32_766)]`."""

    maximum: float

    def check(self, variable: str, value: Any) -> None:
        if value > self.maximum:
            raise SettingsError(
                f"{variable} must be at most {_number(self.maximum)}, got {value!r}"
            )


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """An SQLAlchemy URL with an async driver that is installed; empty means the default."""

    def check(self, variable: str, value: Any) -> None:
        if value:
            check_database_url(variable, value)


@dataclass(frozen=True, slots=True)
class RateLimitBudget:
    """Points per window in the `limits` notation (10000/minute), read by app/ratelimit.py."""

    def check(self, variable: str, value: Any) -> None:
        from app.ratelimit import Budget

        Budget.parse(value)


@dataclass(frozen=True, slots=True)
class RateLimitStorage:
    """Empty (memory) or a Redis URL."""

    def check(self, variable: str, value: Any) -> None:
        from app.ratelimit import check_storage_url

        check_storage_url(value)


# JWS algorithms verified with a public key. HS* would need a shared secret (one that can also
# mint tokens); `none` needs nothing at all: neither is ever accepted.
JWT_ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


@dataclass(frozen=True, slots=True)
class JwtAlgorithms:
    """Comma-separated algorithms from `JWT_ASYMMETRIC` (app/http/jwt_auth.py reads them)."""

    def check(self, variable: str, value: Any) -> None:
        jwt_algorithms(variable, value)


def jwt_algorithms(variable: str, value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if not names:
        raise SettingsError(f"{variable} must name at least one algorithm, e.g. RS256, ES256")
    for name in names:
        if name.lower() == "none":
            raise SettingsError(f"{variable} must never include none (unsigned), got {value!r}")
        if name.upper().startswith("HS"):
            raise SettingsError(
                f"{variable}: {name} (a symmetric key) is not supported: the server would hold a "
                f"key that can mint tokens. Use one of {', '.join(JWT_ASYMMETRIC)}"
            )
        if name not in JWT_ASYMMETRIC:
            raise SettingsError(
                f"{variable}: unknown algorithm {name!r}; choose from {', '.join(JWT_ASYMMETRIC)}"
            )
    return names


@dataclass(frozen=True, slots=True)
class JobsBroker:
    """Empty (the in-process broker) or the Redis URL of a shared queue."""

    def check(self, variable: str, value: Any) -> None:
        if value and not _redis_url(value):
            raise SettingsError(
                f"{variable} must be empty (jobs run inside the API process) or a Redis URL "
                f"such as redis://127.0.0.1:6379/0, got {hide_password(value)!r}"
            )


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """Empty, or a Redis URL."""

    def check(self, variable: str, value: Any) -> None:
        if value and not (value.startswith(("redis://", "rediss://", "unix://")) and "//" in value):
            raise SettingsError(
                f"{variable} must be empty or a Redis URL like redis://127.0.0.1:6379/0, "
                f"got {value!r}"
            )


# A header name as HTTP allows it (RFC 9110 token).
CLIENT_KEY = re.compile(r"address|header:[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True, slots=True)
class ClientKey:
    """Where the rate-limit identity comes from: `address` or `header:<Name>`."""

    def check(self, variable: str, value: Any) -> None:
        if not CLIENT_KEY.fullmatch(value.strip()):
            raise SettingsError(
                f"{variable} must be `address` or `header:<Header-Name>` (e.g. header:X-API-Key),"
                f" got {value!r}"
            )


# The bounds most settings need, so that declaring one is one line.
Positive = Annotated[int, AtLeast(1)]
NonNegative = Annotated[int, AtLeast(0)]
PositiveFloat = Annotated[float, Above(0)]
NonNegativeFloat = Annotated[float, AtLeast(0)]


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    # Empty means "an SQLite file inside data_dir".
    database_url: Annotated[str, DatabaseUrl()] = ""
    log_level: LogLevel = "info"
    # `batchery serve` (and an app made without an engine) upgrades a database whose tables are
    # behind this version; false: refuse to start, naming `batchery migrate`.
    migrate_on_start: bool = True
    # How long a write waits for its turn: in the process's queue of writers (SQLite), then for
    # SQLite's file lock held by another process. Past it: DATABASE_BUSY / 503, nothing written.
    db_write_timeout_seconds: PositiveFloat = 10.0
    # Check a pooled connection before handing it out (PostgreSQL; one round trip per checkout).
    db_pre_ping: bool = True

    # Resolver batching.
    # Parents per batched statement: high enough that one level is one statement in practice,
    # low enough to stay under the databases' bound on bind parameters (32,766).
    loader_max_batch_size: Annotated[int, AtLeast(1), AtMost(32_766)] = 10_000
    max_page_size: Positive = 1000

    # Transport.
    max_batch_operations: Positive = 100
    # 0 means no bound.
    batch_concurrency: NonNegative = 0
    batch_mutations: BatchMutations = "concurrent"
    max_body_bytes: Positive = 100 * 1024 * 1024
    max_file_bytes: Positive = 20 * 1024 * 1024
    max_files: NonNegative = 20
    max_operations_bytes: Positive = 1024 * 1024
    # The bytes of document text one request may ask to parse and validate (what the executor
    # has not cached): preparing is CPU, ~10 ms per 1 KiB of aliases, done before any charge.
    # Far above any real client's documents; a request of cached documents is not bounded by it.
    max_new_document_bytes_per_request: Positive = 256 * 1024
    # The request line and headers of one request (app/http/protocol.py): uvicorn's parser
    # sets no bound of its own. Long enough for a GET query string of a large document.
    max_request_head_bytes: Annotated[int, AtLeast(8192)] = 64 * 1024
    # A response the client takes nothing of for this long cuts its connection, freeing what it
    # would not read (app/http/protocol.py); 0 = wait as long as the client keeps it open.
    write_stall_seconds: NonNegativeFloat = 60.0
    # An uploaded file stays in memory up to this size, then goes on to a temporary file.
    upload_spool_bytes: NonNegative = 1024 * 1024
    # Where those temporary files go (one directory per request); empty means data_dir/uploads.
    upload_spool_dir: str = ""
    max_query_depth: Positive = 15
    max_query_tokens: Positive = 10_000
    max_aliases: NonNegative = 200
    # Pairs of fields sharing a response name that validation's overlap rule may compare
    # (schema/document_limits.py), counted before it runs; 0 = no limit.
    max_field_overlaps: NonNegative = 10_000
    # Operations in one document (only one runs, each is analysed); 0 = no limit.
    max_document_operations: NonNegative = 64
    csrf_required: bool = True
    graphiql: bool = True
    document_cache_size: NonNegative = 512

    # Persisted documents (app/persisted; README "Persisted documents"): APQ and `documentId`.
    # Empty: each worker keeps the documents registered with it. `redis://host:port[/db]`: one
    # store shared by every worker (this worker's memory in front of it).
    persisted_documents_redis_url: Annotated[str, RedisUrl()] = ""
    # Keys in that Redis start with this, so deployments (and tests) sharing one never collide.
    persisted_documents_key_prefix: str = "batchery"
    # A registered document expires from Redis this long after its registration; 0 = never.
    persisted_documents_ttl_seconds: NonNegative = 7 * 24 * 3600
    # The documents a worker keeps in memory (least recently used go first), in bytes of memory
    # (each entry counts its id, its text and its slot: app/persisted/store.py).
    persisted_documents_memory_bytes: Positive = 64 * 1024 * 1024
    # Trusted documents: a manifest file (Apollo's persisted-query manifest or Relay's JSON).
    # Set, the server runs only the documents in it and refuses everything else.
    trusted_documents_manifest: str = ""

    # Query cost (schema/cost): the static cost of one operation, and of one request (the sum
    # of its operations), above which they are refused before running; 0 turns a limit off.
    max_operation_cost: NonNegative = 500_000
    max_request_cost: NonNegative = 1_000_000

    # Execution.
    # Queries run through a plan compiled once per cached document (schema/compiled); off means
    # graphql-core runs every operation (same results, slower; for comparison and debugging).
    compiled_execution: bool = True
    # Move the objects alive after start-up out of the garbage collector's way (app/memory.py).
    gc_freeze: bool = True

    # Runtime guards (README: Runtime guards).
    # Result nodes (objects and list items) one operation may build; 0 = no limit.
    max_result_nodes: NonNegative = 250_000
    # Seconds a request's operations may run; then they are cancelled (TIMEOUT). 0 = no deadline.
    execution_timeout_seconds: NonNegativeFloat = 30.0
    # On SIGTERM, in-flight requests get this long to finish before the process exits.
    shutdown_grace_seconds: NonNegative = 30

    # Bulk operations.
    bulk_enabled: bool = True
    max_records_per_batch: Positive = 200
    idempotency_ttl_seconds: Positive = 24 * 3600
    # A key still marked "running" after this long belongs to a request that died (worker killed
    # mid-batch); a retry may then take it over instead of getting 409 until the TTL runs out.
    idempotency_lock_seconds: Positive = 300
    # The options a bulk request gets when it leaves them out (the seed's BatchConfig defaults).
    bulk_default_atomic: bool = False
    bulk_default_return_records: bool = False
    bulk_default_continue_on_error: bool = True
    bulk_default_validate_only: bool = False
    # Sub-requests per `POST /api/batch`.
    rest_batch_max_operations: Positive = 100

    # Rate limiting by cost (app/ratelimit.py; README "Rate limits"). Off by default: the right
    # budget and the right client identity depend on the deployment (workers, proxy, Redis).
    rate_limit_enabled: bool = False
    # Points per window, in the `limits` library's notation ("N/second|minute|hour|day"). Twice
    # max_request_cost a minute: any request the cost limits allow can run, with room to spare.
    rate_limit: Annotated[str, RateLimitBudget()] = "2000000/minute"
    # Empty: each worker counts in its own memory. `redis://host:port[/db]`: one shared budget.
    rate_limit_storage: Annotated[str, RateLimitStorage()] = ""
    # Keys in the shared storage start with this, so deployments (and tests) sharing one Redis
    # never count against each other.
    rate_limit_key_prefix: str = "batchery"
    # Who a client is: `address` (the peer address uvicorn reports) or `header:<Name>` (that
    # header's value, e.g. an API key; requests without it fall back to the address).
    rate_limit_key: Annotated[str, ClientKey()] = "address"
    # Refused credentials (401) one address may present per window before every credential it
    # presents gets 429 until the window ends (app/http/auth_failures.py): key guessing.
    rate_limit_auth_failures: Positive = 100

    # Access (README: Authentication and access).
    # open: a request without a credential may do anything (a loud line at start says so);
    # required: it gets 401. A request that presents a key is held to its scopes in both.
    auth: AuthMode = "open"
    # Answer `__schema` / `__type`; off refuses them at validation (GraphiQL then has no docs).
    introspection: bool = True
    # CORS (Starlette's CORSMiddleware): comma-separated lists. No origin means same-origin only.
    cors_allow_origins: str = ""
    cors_allow_methods: str = "GET, POST, PATCH, DELETE"
    cors_allow_headers: str = (
        "Authorization, Content-Type, Accept, GraphQL-Preflight, Apollo-Require-Preflight, "
        "X-Apollo-Operation-Name, Idempotency-Key"
    )
    cors_max_age_seconds: NonNegative = 600

    # JSON Web Tokens from an identity provider (app/http/jwt_auth.py; README: Authentication and
    # access). Off until one key source is set: a JWKS URL, a JWKS file, or a PEM public key file.
    # Issuer and audience are then required (app/http/jwt_auth.py checks, naming the variables).
    jwt_jwks_url: str = ""
    jwt_jwks_file: str = ""
    jwt_public_key_file: str = ""
    jwt_issuer: str = ""
    # Comma-separated: a token is accepted when its `aud` names any of them.
    jwt_audience: str = ""
    # Asymmetric algorithms only (the server holds no secret that could mint a token); never none.
    jwt_algorithms: Annotated[str, JwtAlgorithms()] = "RS256, ES256"
    # The claim holding the scopes: a space-separated string (OAuth `scope`) or a list (`scp`,
    # `permissions`); names outside read/write/bulk/admin are ignored, after removing the prefix.
    jwt_scopes_claim: str = "scope"
    jwt_scope_prefix: str = ""
    # Clock skew tolerated on exp, nbf and iat.
    jwt_leeway_seconds: NonNegative = 30
    # Keys fetched from the JWKS URL (or read from the file) are used this long, then refetched;
    # a token naming an unknown key id refetches at most once per jwt_jwks_min_refresh_seconds.
    jwt_jwks_cache_seconds: Positive = 300
    jwt_jwks_min_refresh_seconds: NonNegative = 30
    jwt_jwks_timeout_seconds: PositiveFloat = 5.0

    # Bulk jobs (README: Bulk jobs). Empty broker: jobs run inside the API process (taskiq's
    # in-memory broker); `redis://host:port[/db]`: the API enqueues on a Redis stream and
    # `batchery worker` processes execute.
    jobs_broker: Annotated[str, JobsBroker()] = ""
    # Where each job's input and result files live; empty means data_dir/jobs.
    jobs_dir: str = ""
    # Redis keys (the queue's stream, the progress channels) start with this.
    jobs_key_prefix: str = "batchery"
    jobs_max_file_bytes: Positive = 2 * 1024 * 1024 * 1024
    jobs_max_records: Positive = 10_000_000
    # One record of a job's file (a JSON line, a CSV row) at most this long: a longer one is a
    # bad record, skipped without being held in memory (a worker reads lines of at most this).
    jobs_max_line_bytes: Positive = 1024 * 1024
    # An atomic job is one transaction: its locks and undo grow with every record.
    jobs_max_atomic_records: Positive = 100_000
    # Jobs of one client not yet finished (created, running or canceling).
    jobs_max_active_per_client: Positive = 5
    # A finished job's files are removed (and the job EXPIRED) this long after it was created.
    jobs_retention_seconds: Positive = 7 * 24 * 3600
    # A worker renews its claim on a job at every chunk; a claim this old belongs to a dead
    # worker and another takes the job over, resuming after the last committed chunk.
    jobs_lease_seconds: Annotated[float, Above(0), AtMost(24 * 3600)] = 60.0
    # Progress events of one job at most this often (plus the final one).
    jobs_progress_interval_seconds: Annotated[float, Above(0), AtMost(60)] = 0.5
    # Jobs one process (a worker, or the API itself when embedded) runs at once.
    jobs_worker_concurrency: Annotated[int, AtLeast(1), AtMost(64)] = 2
    # A job's chunks (one transaction and checkpoint each) grow toward a quarter second up to
    # this many records: not a client's batch, so not BATCHERY_MAX_RECORDS_PER_BATCH. Bounded so
    # a chunk's statements stay under the databases' 32,766 bind parameters.
    jobs_max_chunk_records: Annotated[int, AtLeast(1), AtMost(2000)] = 1000

    # Subscriptions (WebSocket graphql-transport-ws and SSE on /graphql; app/http/subscriptions.py).
    # Operations one WebSocket connection may run at once.
    subscription_max_per_connection: Positive = 10
    # How long one subscription may stream before the server ends it (the client resubscribes);
    # 0 = no bound.
    subscription_max_seconds: NonNegativeFloat = 3600.0
    # A WebSocket must send connection_init within this many seconds, or it is closed (4408).
    subscription_init_timeout_seconds: PositiveFloat = 10.0

    def __post_init__(self) -> None:
        for spec in _specs():
            spec.check(getattr(self, spec.name))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'batchery.db').resolve()}"

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"

    @property
    def resolved_upload_spool_dir(self) -> Path:
        return Path(self.upload_spool_dir) if self.upload_spool_dir else self.data_dir / "uploads"

    @property
    def resolved_jobs_dir(self) -> Path:
        return Path(self.jobs_dir) if self.jobs_dir else self.data_dir / "jobs"

    @property
    def cors_origins(self) -> list[str]:
        return _comma_list(self.cors_allow_origins)

    @property
    def cors_methods(self) -> list[str]:
        return [method.upper() for method in _comma_list(self.cors_allow_methods)]

    @property
    def cors_headers(self) -> list[str]:
        return _comma_list(self.cors_allow_headers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in _specs():
            raw = environ.get(spec.variable)
            if raw is not None:
                values[spec.name] = spec.convert(raw)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class _Spec:
    """One field: its variable, its plain type, and the bounds its annotation declares."""

    name: str
    variable: str
    kind: Any
    bounds: tuple[Any, ...]

    def convert(self, raw: str) -> Any:
        variable, kind = self.variable, self.kind
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise SettingsError(f"{variable} must be true or false, got {raw!r}")
        if kind is int:
            try:
                return int(raw)
            except ValueError:
                raise SettingsError(f"{variable} must be a whole number, got {raw!r}") from None
        if kind is float:
            try:
                return float(raw)
            except ValueError:
                raise SettingsError(f"{variable} must be a number, got {raw!r}") from None
        if kind is Path:
            return Path(raw)
        if get_origin(kind) is Literal:
            # The choices are lower case; `INFO` means `info`.
            return raw.strip().lower()
        return raw

    def check(self, value: Any) -> None:
        kind = self.kind
        if get_origin(kind) is Literal:
            choices = get_args(kind)
            if value not in choices:
                raise SettingsError(
                    f"{self.variable} must be one of {', '.join(choices)}, got {value!r}"
                )
        elif kind in (int, float) and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise SettingsError(f"{self.variable} must be a number, got {value!r}")
        for bound in self.bounds:
            bound.check(self.variable, value)


@cache
def _specs() -> tuple[_Spec, ...]:
    hints = get_type_hints(Settings, include_extras=True)
    specs = []
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        bounds: tuple[Any, ...] = ()
        if get_origin(hint) is Annotated:
            hint, *extras = get_args(hint)
            bounds = tuple(extra for extra in extras if hasattr(extra, "check"))
        specs.append(_Spec(f.name, PREFIX + f.name.upper(), hint, bounds))
    return tuple(specs)


def check_database_url(variable: str, url: str) -> None:
    """Parse with SQLAlchemy and insist on an async driver that is installed, so a bad URL is one
    line at start instead of a traceback at the first request."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    allowed = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DATABASE"
    shown = hide_password(url)
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        dialect = parsed.get_dialect() if backend in ASYNC_DRIVERS else None
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise SettingsError(f"{variable} must be a URL like {allowed}, got {shown!r}") from None
    if dialect is None:
        raise SettingsError(
            f"{variable}: {backend!r} databases are not supported; use {allowed}, got {shown!r}"
        )
    if not getattr(dialect, "is_async", False):
        raise SettingsError(
            f"{variable} needs an async driver: use {ASYNC_DRIVERS[backend]}, got {shown!r}"
        )
    try:
        dialect.import_dbapi()
    except ImportError as error:
        raise SettingsError(
            f"{variable}: the driver of {shown!r} is not installed ({error}); "
            f"use {ASYNC_DRIVERS[backend]}"
        ) from None


ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite:///", "postgresql": "postgresql+asyncpg://"}


def hide_password(url: str) -> str:
    """The URL as it may be printed: `user:***@host`. Works on strings SQLAlchemy cannot parse."""
    return re.sub(r"(://[^:/@]*:)[^/?#]*@", r"\1***@", url)


def _redis_url(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("redis", "rediss") and bool(parts.hostname) and port != 0


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
