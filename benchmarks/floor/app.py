"""The floor: the benchmark's operations answered with no GraphQL at all.

A request's `query` is looked up in a table of the benchmark's own queries; the handler runs the
same statements as the GraphQL servers and builds the response with dicts and orjson. Whatever a
GraphQL server spends above this is the price of GraphQL. On SQLite the statements go through
`app.db.reads.Reader`, as Batchery's do; on PostgreSQL through asyncpg directly
(`benchmarks/floor/pg.py`): the same SQL text, without SQLAlchemy.

    uvicorn benchmarks.floor.app:app
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks import scenarios
from benchmarks.common import (
    CountRequests,
    Resources,
    healthz,
    lifespan,
    stats_endpoint,
    store_upload,
)
from benchmarks.floor.pg import asyncpg_reader

_state: dict[str, Resources] = {}

_reader: dict[str, Any] = {}  # "reader": a Reader (SQLite) or an AsyncpgReader (PostgreSQL)

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any]]]


def columns(rows: Sequence[Any], *names: str) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples of the named columns: attribute access on a SQLAlchemy Row costs ~0.5 us
    per column, so hand-written code that cares unpacks tuples (Batchery does the same). Works on
    SQLAlchemy rows and asyncpg records alike."""
    if not rows:
        return iter(())
    first = rows[0]
    fields = list(first._fields if hasattr(first, "_fields") else first.keys())
    if len(names) == 1:  # itemgetter of one index gives the value, not a 1-tuple
        index = fields.index(names[0])
        return ((row[index],) for row in rows)
    return map(itemgetter(*(fields.index(name) for name in names)), rows)


async def hello(reader: Any, variables: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"__typename": "Query"}}


def bakeries_with_orders(first: int, limit: int) -> Handler:
    """`bakeries(first) { name orders(limitTo) { id writtenPhrase } }`: two statements."""

    async def handle(reader: Any, variables: dict[str, Any]) -> dict[str, Any]:
        bakeries = list(columns(await reader.bakeries(None, first), "id", "name"))
        orders = await reader.newest_orders([pk for pk, _ in bakeries], limit)
        by_bakery: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for pk, bakery_pk, phrase in columns(orders, "id", "bakery_id", "written_phrase"):
            by_bakery[bakery_pk].append({"id": str(pk), "writtenPhrase": phrase})
        return {
            "data": {
                "bakeries": [
                    {"name": name, "orders": by_bakery.get(pk, [])} for pk, name in bakeries
                ]
            }
        }

    return handle


async def deep(reader: Any, variables: dict[str, Any]) -> dict[str, Any]:
    """`bakeries { suppliers { bakeries { orders { id } } } }`: four statements."""
    bakery_ids = [pk for (pk,) in columns(await reader.bakeries(None, 100), "id")]
    links = await reader.suppliers_of_bakeries(bakery_ids)
    suppliers_of: dict[int, list[int]] = defaultdict(list)
    for bakery_pk, supplier_pk in columns(links, "bakery_id", "id"):
        suppliers_of[bakery_pk].append(supplier_pk)
    supplier_ids = sorted({s for ids in suppliers_of.values() for s in ids})
    members = await reader.bakeries_of_suppliers(supplier_ids)
    bakeries_of: dict[int, list[int]] = defaultdict(list)
    for supplier_pk, bakery_pk in columns(members, "supplier_id", "id"):
        bakeries_of[supplier_pk].append(bakery_pk)
    member_ids = sorted({b for ids in bakeries_of.values() for b in ids})
    orders = await reader.newest_orders(member_ids, 15)
    orders_of: dict[int, list[dict[str, str]]] = defaultdict(list)
    for pk, bakery_pk in columns(orders, "id", "bakery_id"):
        orders_of[bakery_pk].append({"id": str(pk)})
    supplier_json = {
        supplier: {"bakeries": [{"orders": orders_of[b]} for b in bakeries_of[supplier]]}
        for supplier in supplier_ids
    }
    return {
        "data": {
            "bakeries": [
                {"suppliers": [supplier_json[s] for s in suppliers_of[b]]} for b in bakery_ids
            ]
        }
    }


HANDLERS: dict[str, Handler] = {
    scenarios.HELLO: hello,
    scenarios.SMALL: bakeries_with_orders(10, 5),
    scenarios.BIG: bakeries_with_orders(100, 50),
    scenarios.DEEP: deep,
}


async def run(operation: Any) -> dict[str, Any]:
    if not isinstance(operation, dict) or operation.get("query") not in HANDLERS:
        return {"errors": [{"message": "the floor only knows the benchmark's queries"}]}
    return await HANDLERS[operation["query"]](_reader["reader"], operation.get("variables") or {})


async def upload(resources: Resources, file: UploadFile) -> dict[str, Any]:
    stored = await store_upload(
        resources,
        1,
        file.filename or "upload",
        file.content_type or "application/octet-stream",
        file.read,
    )
    return {
        "data": {
            "uploadOrderPhoto": {"id": str(stored.id), "size": stored.size, "sha256": stored.sha256}
        }
    }


async def graphql(request: Request) -> Response:
    resources = _state["resources"]
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=100) as form:
            operations = orjson.loads(str(form["operations"]))
            mapping: dict[str, list[str]] = orjson.loads(str(form["map"]))
            if isinstance(operations, list):
                by_operation = {
                    path.split(".")[0]: form[name]
                    for name, paths in mapping.items()
                    for path in paths
                }
                body: Any = [
                    await upload(resources, by_operation[str(index)])  # type: ignore[arg-type]
                    for index in range(len(operations))
                ]
            else:
                body = await upload(resources, form[next(iter(mapping))])  # type: ignore[arg-type]
        return Response(orjson.dumps(body), media_type="application/json")
    payload = orjson.loads(await request.body())
    if isinstance(payload, list):
        body = [await run(operation) for operation in payload]
    else:
        body = await run(payload)
    return Response(orjson.dumps(body), media_type="application/json")


def floor_lifespan(state: dict[str, Resources]) -> Callable[[Starlette], Any]:
    resources_lifespan = lifespan(state)

    @asynccontextmanager
    async def run(app: Starlette) -> AsyncIterator[None]:
        async with resources_lifespan(app):
            resources = state["resources"]
            if resources.engine.dialect.name != "postgresql":
                _reader["reader"] = resources.reader
                yield
                return
            async with asyncpg_reader(resources) as reader:
                _reader["reader"] = reader
                yield

    return run


app = Starlette(
    routes=[
        Route("/graphql", graphql, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/bench/stats", stats_endpoint(_state)),
    ],
    lifespan=floor_lifespan(_state),
    middleware=[Middleware(CountRequests, state=_state)],
)
