"""Settings, read once from `BATCHERY_*` environment variables.

Every field below is documented in the README's configuration table; `Settings.from_env` is the
only place that reads the environment, so tests build `Settings(...)` directly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

PREFIX = "BATCHERY_"

BatchMutations = Literal["concurrent", "serial"]


class SettingsError(ValueError):
    """A `BATCHERY_*` variable holds a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    # Empty means "an SQLite file inside data_dir".
    database_url: str = ""
    log_level: str = "info"

    # Resolver batching.
    # Parents per batched statement: high enough that one level is one statement in practice,
    # low enough to stay under the databases' bound on bind parameters (32,766).
    loader_max_batch_size: int = 10_000
    max_page_size: int = 1000

    # Transport.
    max_batch_operations: int = 100
    batch_concurrency: int = 0
    batch_mutations: BatchMutations = "concurrent"
    max_body_bytes: int = 100 * 1024 * 1024
    max_file_bytes: int = 20 * 1024 * 1024
    max_files: int = 20
    max_operations_bytes: int = 1024 * 1024
    # An uploaded file stays in memory up to this size, then goes on to a temporary file.
    upload_spool_bytes: int = 1024 * 1024
    # Where those temporary files go (one directory per request); empty means data_dir/uploads.
    upload_spool_dir: str = ""
    max_query_depth: int = 15
    max_query_tokens: int = 10_000
    max_aliases: int = 200
    csrf_required: bool = True
    graphiql: bool = True
    document_cache_size: int = 512

    # Execution.
    # Queries run through a plan compiled once per cached document (schema/compiled); off means
    # graphql-core runs every operation (same results, slower; for comparison and debugging).
    compiled_execution: bool = True
    # Move the objects alive after start-up out of the garbage collector's way (app/memory.py).
    gc_freeze: bool = True

    # Runtime guards (README: Runtime guards).
    # Result nodes (objects and list items) one operation may build; 0 = no limit.
    max_result_nodes: int = 250_000
    # Seconds a request's operations may run; then they are cancelled (TIMEOUT). 0 = no deadline.
    execution_timeout_seconds: float = 30.0
    # On SIGTERM, in-flight requests get this long to finish before the process exits.
    shutdown_grace_seconds: int = 30

    # Bulk operations.
    bulk_enabled: bool = True
    max_records_per_batch: int = 200
    idempotency_ttl_seconds: int = 24 * 3600
    # A key still marked "running" after this long belongs to a request that died (worker killed
    # mid-batch); a retry may then take it over instead of getting 409 until the TTL runs out.
    idempotency_lock_seconds: int = 300
    # The options a bulk request gets when it leaves them out (the seed's BatchConfig defaults).
    bulk_default_atomic: bool = False
    bulk_default_return_records: bool = False
    bulk_default_continue_on_error: bool = True
    bulk_default_validate_only: bool = False
    # Sub-requests per `POST /api/batch`.
    rest_batch_max_operations: int = 100

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _convert(f.name, raw, hints[f.name])
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _convert(name: str, raw: str, hint: Any) -> Any:
    variable = PREFIX + name.upper()
    if hint is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{variable} must be true or false, got {raw!r}")
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{variable} must be a whole number, got {raw!r}") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{variable} must be a number, got {raw!r}") from None
    if hint is Path:
        return Path(raw)
    choices = get_args(hint)
    if choices:
        if raw not in choices:
            raise SettingsError(f"{variable} must be one of {', '.join(choices)}, got {raw!r}")
        return raw
    return raw
