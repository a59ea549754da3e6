"""The bakery data model: SQLAlchemy 2 typed ORM classes, knowing nothing of GraphQL."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from app.db.job_model import FileFormat, JobStatus, Operation

# The widest value of an `Integer` column (keys, totals) on every backend: PostgreSQL's int4.
INT_MAX = 2**31 - 1


class Region(enum.Enum):
    NORTH_EAST = "NORTH_EAST"
    NORTH_WEST = "NORTH_WEST"
    SOUTH_EAST = "SOUTH_EAST"
    SOUTH_WEST = "SOUTH_WEST"
    CENTRAL = "CENTRAL"


class OrderStatus(enum.Enum):
    PLACED = "PLACED"
    BAKING = "BAKING"
    READY = "READY"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class _SQLiteDateTime(sqlite.DATETIME):
    """SQLite's DATETIME (same column type, same stored text), read back with `fromisoformat`:
    SQLAlchemy's own reader parses the text with a regular expression, several times slower,
    and a large response reads thousands of them."""

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], datetime | None]:
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            # The text is naive UTC: read it as such in one step (`replace(tzinfo=...)` after
            # parsing costs three times the parse).
            return None if value is None else parse(value + "+00:00")

        return process


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every dialect: SQLite stores naive text, so normalise to UTC both ways."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDateTime())  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is UTC:  # SQLite's, already read as UTC
            return moment
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def enum_reader(enum_class: type[enum.Enum]) -> Callable[[Any], Any]:
    """The member of `enum_class` for a stored name, a member or None as they are: how a reader
    of rows by position gets an enum column on either backend (SQLAlchemy's rows hold members,
    PostgreSQL's records from app/db/pg_reads.py the stored names). One dict lookup."""
    lookup: dict[Any, Any] = {None: None, **enum_class.__members__}
    lookup.update({member: member for member in enum_class})
    return lookup.__getitem__


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(enum_class: type[enum.Enum], name: str) -> SAEnum:
    # Stored as plain strings with a CHECK: portable, and readable in a SQL shell.
    return SAEnum(enum_class, name=name, native_enum=False, create_constraint=True, length=16)


class Base(DeclarativeBase):
    pass


bakery_suppliers = Table(
    "bakery_suppliers",
    Base.metadata,
    Column("bakery_id", ForeignKey("bakeries.id", ondelete="CASCADE"), primary_key=True),
    Column("supplier_id", ForeignKey("suppliers.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_bakery_suppliers_supplier", "supplier_id", "bakery_id"),
)


class Bakery(Base):
    __tablename__ = "bakeries"
    __table_args__ = (CheckConstraint("length(name) > 0", name="ck_bakeries_name_not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[Region] = mapped_column(_enum(Region, "region"), index=True)


class Baker(Base):
    __tablename__ = "bakers"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), index=True)
    bakery_id: Mapped[int | None] = mapped_column(
        ForeignKey("bakeries.id", ondelete="SET NULL"), index=True
    )
    # Not unique on purpose: data may (wrongly) name two managers, and the API must say so.
    is_manager: Mapped[bool] = mapped_column(default=False)


class Supplier(Base):
    __tablename__ = "suppliers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class CakeOrder(Base):
    __tablename__ = "cake_orders"
    __table_args__ = (
        CheckConstraint("current_total >= 0", name="ck_cake_orders_total_not_negative"),
        # Serves "newest N orders of a bakery" straight from the index.
        Index("ix_cake_orders_bakery_newest", "bakery_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    bakery_id: Mapped[int] = mapped_column(ForeignKey("bakeries.id", ondelete="CASCADE"))
    written_phrase: Mapped[str] = mapped_column(String(500))
    current_total: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.PLACED
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint("stock >= 0", name="ck_products_stock_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    stock: Mapped[int] = mapped_column(Integer, default=0)


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("cake_orders.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyKey(Base):
    """A client's Idempotency-Key, a hash of the request it came with, and the response that
    request got: what lets a retry be answered without writing twice, from any worker."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Where the key was used (REST, or one GraphQL field): keys are unique per scope.
    scope: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # "running" while the first request works, then "done" with its response.
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiKey(Base):
    """A caller's API key. The key itself is never stored: only its sha256 (the key is 256 random
    bits, so a fast hash is enough) and its id, the non-secret part the key starts with."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    # Space-separated scope names (schema/access.py: read, write, bulk, admin).
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """One write that ran (a GraphQL mutation operation, a REST write): who asked, in which
    HTTP request."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    # "key:<id>" or "anonymous".
    caller: Mapped[str] = mapped_column(String(64), index=True)
    # "graphql" or "rest".
    transport: Mapped[str] = mapped_column(String(16))
    # The mutation fields (`deleteManyBakeries`) or the REST route (`POST /api/bakeries/bulk`).
    action: Mapped[str] = mapped_column(String(500))
    # "ok", or "error" with the error codes (GraphQL) or the status (REST) in `detail`.
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")


class BulkJob(Base):
    """A bulk job (app/db/jobs.py): what was asked, where it stands, and its checkpoint: the
    records committed (`processed`) and the sizes of its result files at that moment."""

    __tablename__ = "bulk_jobs"
    __table_args__ = (
        # The oldest claimable job first (workers), and a client's own jobs newest first.
        Index("ix_bulk_jobs_status_created", "status", "created_at"),
        Index("ix_bulk_jobs_owner_created", "owner", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The caller who submitted it (Caller.id): only they (and admins) see it.
    owner: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    operation: Mapped[Operation] = mapped_column(_enum(Operation, "bulk_operation"))
    file_format: Mapped[FileFormat] = mapped_column(_enum(FileFormat, "bulk_file_format"))
    # The bulk options, as a JSON object.
    options: Mapped[str] = mapped_column(Text)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "bulk_job_status"))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Byte sizes of results.jsonl and failed.<fmt> at the checkpoint (may pass 2 GiB).
    results_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    failed_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
