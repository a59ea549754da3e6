"""`Reader`'s statements on PostgreSQL, run through asyncpg directly.

SQLAlchemy's result processing cost more than the fetch itself: for 2,500 orders, its asyncpg
cursor adapter and the per-row type processors took 5.8 ms against asyncpg's own 2.7
(docs/performance.md). Here each statement is compiled once, by SQLAlchemy's asyncpg dialect, to
the SQL text it would send anyway (an expanding `IN` list becomes `= ANY($n)` over one array
parameter, so one text, prepared once per connection, serves every list length), and asyncpg
runs it on a connection checked out of the engine's own pool: one pool per process, the pool's
pre-ping, the engine's connect arguments. What the rest of the app relied on is kept:

- rows: asyncpg's records, not copied, that read like SQLAlchemy's rows: `_fields`, positions,
  and attributes with SQLAlchemy's values (enum columns as members; asyncpg already gives
  timestamptz as UTC-aware datetimes, as `UTCDateTime` returns them). By position an enum column
  holds its stored name: whoever reads rows by position converts the enum columns it uses
  (`enum_reader`, which takes a member as well, so the same reader serves SQLite's rows);
- `before_cursor_execute` fires for every statement (`batchery_db_statements_total`, the tests'
  statement counts);
- errors come out as SQLAlchemy raised them (asyncpg's translated by the dialect's adapter, then
  wrapped in `DBAPIError` with `connection_invalidated`), so `app/db/faults.py` and every
  caller see what they saw before; a connection found dead invalidates the pool as SQLAlchemy
  does;
- a read cancelled mid-statement stops its statement in PostgreSQL too (asyncpg sends a
  CancelRequest; the connection is discarded once that is done, never before: terminating it
  first would drop the CancelRequest, and PostgreSQL would go on running, or waiting for a lock,
  for a client that is gone); a read failing with its connection dead or inside a transaction
  discards that connection instead of handing one in an unknown state back to the pool.
"""

from __future__ import annotations

import asyncio
import functools
import keyword
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import BindParameter, Enum, Executable, any_, bindparam
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, elements, operators, visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from app.db.models import UTCDateTime, enum_reader


class PgStatement:
    """One statement, compiled for asyncpg: its text, how to order its parameters, and the
    class of its records."""

    __slots__ = ("order", "record", "sql")

    def __init__(self, statement: Executable, dialect: Any) -> None:
        assert isinstance(statement, ClauseElement)
        compiled = _with_arrays(statement).compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(f"not a fixed text: {compiled.string}")
        self.sql: str = compiled.string
        processors: Mapping[str, Any] = compiled._bind_processors
        # (name, default, processor) in positional order; a default for literal binds such as
        # `.limit(1)`, a processor where SQLAlchemy has one (enum members to their names, ...).
        self.order: list[tuple[str, Any, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].value, processors.get(name))
            for name in compiled.positiontup or ()
        ]
        columns = [(column[0], column[3]) for column in compiled._result_columns or ()]
        self.record = _record_class(columns, dialect)

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        given = params or {}
        values = []
        for name, default, process in self.order:
            value = given.get(name, default)
            values.append(value if process is None or value is None else process(value))
        return values


@functools.cache
def prepared(statement: Executable) -> PgStatement:
    # Statements are module constants or cached by shape (app/db/reads.py): few, kept for good.
    return PgStatement(statement, _DIALECT)


def _with_arrays(statement: ClauseElement) -> ClauseElement:
    """`column IN (expanding list)` as `column = ANY(array)`: one text for every list length."""

    def replace(element: Any, **kw: Any) -> Any:
        if isinstance(element, elements.BinaryExpression) and element.operator is operators.in_op:
            right = element.right
            if isinstance(right, BindParameter) and right.expanding:
                array = bindparam(right.key, type_=ARRAY(element.left.type))
                return element.left == any_(array)
        return None

    replaced = visitors.replacement_traverse(statement, {}, replace)
    assert isinstance(replaced, ClauseElement)
    return replaced


class DataRecord(asyncpg.Record):  # type: ignore[misc]
    """An asyncpg record that also reads like SQLAlchemy's rows: `_fields`, and attributes with
    SQLAlchemy's values (enum columns as members). By position it holds what PostgreSQL sent:
    enum columns as their stored names, for the readers that convert only the columns they use
    (`enum_reader` in app/db/models.py). One subclass per statement says which columns."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _positions: dict[str, int] = {}
    _converters: dict[str, Callable[[Any], Any]] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            position = self._positions[name]
        except KeyError:
            raise AttributeError(name) from None
        convert = self._converters.get(name)
        value = self[position]
        return value if convert is None else convert(value)


def _record_class(columns: list[tuple[str, Any]], dialect: Any) -> type[DataRecord]:
    """The record class of a statement's rows. Any column type SQLAlchemy would process on
    asyncpg other than an enum is refused here, when compiled: a value that silently differed
    from the SQLAlchemy path would change the API's output."""
    names = tuple(name for name, _ in columns)
    if not all(n.isidentifier() and not keyword.iskeyword(n) and n[0] != "_" for n in names):
        raise ValueError(f"column names unfit for a row: {names}")
    converters: dict[str, Callable[[Any], Any]] = {}
    for name, type_ in columns:
        if isinstance(type_, Enum) and type_.enum_class is not None:
            converters[name] = enum_reader(type_.enum_class)
        elif not (isinstance(type_, UTCDateTime) or _plain(type_, dialect)):
            # (asyncpg's timestamptz values are UTC-aware already: what UTCDateTime returns.)
            raise TypeError(f"no asyncpg conversion for column {name} of type {type_!r}")
    namespace = {
        "__slots__": (),
        "_fields": names,
        "_positions": {name: i for i, name in enumerate(names)},
        "_converters": converters,
    }
    return type("Row", (DataRecord,), namespace)


def _plain(type_: Any, dialect: Any) -> bool:
    # Integers, strings, booleans: SQLAlchemy has no result processor for them on asyncpg.
    return type_.dialect_impl(dialect).result_processor(dialect, None) is None


def _dialect() -> Any:
    from sqlalchemy.dialects.postgresql import asyncpg

    return asyncpg.dialect()  # type: ignore[no-untyped-call]


_DIALECT = _dialect()


# Long enough for a CancelRequest on a loaded machine; bounded so a lost one cannot hold a
# pooled connection for good.
CANCEL_SETTLE_SECONDS = 10.0
_settling: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak refs)


def _discard_once_settled(fairy: Any) -> None:
    driver = fairy.driver_connection
    if driver is None or driver.is_closed():
        fairy.invalidate()
        return
    task = asyncio.get_running_loop().create_task(_settle_then_discard(fairy, driver))
    _settling.add(task)
    task.add_done_callback(_settling.discard)


async def _settle_then_discard(fairy: Any, driver: Any) -> None:
    try:
        # asyncpg runs this only after its CancelRequest for the cancelled statement is done.
        async with asyncio.timeout(CANCEL_SETTLE_SECONDS):
            await driver.fetchval("SELECT 1")
    except (Exception, asyncio.CancelledError):
        pass  # discarded below either way; a failure here only means it was broken already
    finally:
        fairy.invalidate()


class PgRunner:
    """Runs prepared statements on the engine's pooled asyncpg connections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sync_engine = engine.sync_engine
        self.dialect = engine.dialect

    async def fetch(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        ready = prepared(statement)
        args = ready.args(params)
        pool = self.sync_engine.pool
        # The pool's checkout (and its pre-ping) is SQLAlchemy's synchronous code over asyncio.
        fairy = await greenlet_spawn(pool.connect)
        try:
            announce = self.sync_engine.dispatch.before_cursor_execute
            if announce:
                announce(None, None, ready.sql, tuple(args), None, False)
            driver: Any = fairy.driver_connection
            records: list[Any] = await driver.fetch(ready.sql, *args, record_class=ready.record)
        except Exception as error:
            self._raise(error, ready.sql, args, fairy)
        except BaseException:
            # Cancelled mid-statement: asyncpg is sending PostgreSQL a CancelRequest for it.
            # The connection is discarded rather than pooled in an unknown state, but only once
            # that is done (see the module's docstring).
            _discard_once_settled(fairy)
            raise
        # No transaction was opened (asyncpg runs the statement on its own): returning the
        # connection does no I/O.
        fairy.close()
        return records

    def _raise(self, error: Exception, sql: str, args: list[Any], fairy: Any) -> NoReturn:
        """Raise `error` as SQLAlchemy's execute would have (Connection._handle_dbapi_exception),
        and put the connection back, or away when it is dead or busy."""
        dbapi = self.dialect.loaded_dbapi
        adapter = fairy.dbapi_connection
        try:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, error)
        except dbapi.Error as translated:
            disconnect = self.dialect.is_disconnect(translated, adapter, None)
            if disconnect:
                # As SQLAlchemy does: this connection, and every other one opened before now.
                self.sync_engine.pool._invalidate(fairy, translated)
            else:
                self._put_back(fairy)
            wrapped = sa_exc.DBAPIError.instance(
                sql,
                tuple(args),
                translated,
                dbapi.Error,
                dialect=self.dialect,
                connection_invalidated=disconnect,
            )
            raise wrapped from translated
        except BaseException:
            self._put_back(fairy)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _put_back(fairy: Any) -> None:
        driver = fairy.driver_connection
        if driver is None or driver.is_closed() or driver.is_in_transaction():
            fairy.invalidate()
        else:
            fairy.close()
