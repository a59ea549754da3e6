"""A real client against a real server: gql's `execute_batch` sends a JSON-array batch, and its
file upload support sends the multipart request spec."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from gql import Client, FileVar, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import print_schema

from schema import schema


def transport(live_server, **kwargs) -> HTTPXAsyncTransport:
    return HTTPXAsyncTransport(url=f"{live_server.url}/graphql", **kwargs)


async def test_gql_execute_batch_gets_each_result_in_order(live_server):
    async with Client(transport=transport(live_server)) as session:
        results = await session.execute_batch(
            [
                GraphQLRequest('{ bakery(id: "2") { id name } }'),
                GraphQLRequest(
                    "query($n: Int) { bakeries(first: $n) { id orders(limitTo: 2) { id } } }",
                    variable_values={"n": 3},
                ),
                GraphQLRequest("{ products { name } }"),
            ]
        )
    assert results[0]["bakery"]["id"] == "2"
    assert [b["id"] for b in results[1]["bakeries"]] == ["1", "2", "3"]
    assert all(len(b["orders"]) == 2 for b in results[1]["bakeries"])
    assert results[2]["products"][0] == {"name": "Sponge base"}


async def test_gql_execute_batch_reports_the_failing_operation(live_server):
    async with Client(transport=transport(live_server)) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute_batch(
                [
                    GraphQLRequest("{ products { id } }"),
                    GraphQLRequest(
                        'mutation { addMoney(orderId: "999999", dollarsToAdd: 1) { id } }'
                    ),
                ]
            )
    assert "no cake order has id 999999" in str(raised.value)


async def test_gql_fetches_the_schema_by_introspection(live_server):
    async with Client(
        transport=transport(live_server), fetch_schema_from_transport=True
    ) as session:
        assert session.client.schema is not None
        served = print_schema(session.client.schema)
    assert "uploadOrderPhoto(orderId: ID!, file: Upload!): Photo!" in served
    assert served.count("type ") == print_schema(schema._schema).count("type ")


async def test_gql_uploads_a_file(live_server, tmp_path):
    # A JPEG's first bytes (what the server checks), then enough to pass the 64 KiB spool threshold.
    content = b"\xff\xd8\xff\xe0" + os.urandom(200_000)
    path = tmp_path / "cake photo.jpg"
    path.write_bytes(content)
    # gql sends no preflight header of its own: CSRF protection wants one on multipart requests.
    upload_transport = transport(live_server, headers={"GraphQL-Preflight": "1"})
    async with Client(transport=upload_transport) as session:
        request = GraphQLRequest(
            'mutation($file: Upload!) { uploadOrderPhoto(orderId: "3", file: $file) '
            "{ filename size sha256 url } }",
            variable_values={"file": FileVar(str(path), content_type="image/jpeg")},
        )
        result = await session.execute(request, upload_files=True)
    photo = result["uploadOrderPhoto"]
    assert photo["filename"] == "cake photo.jpg"
    assert photo["size"] == len(content)
    assert photo["sha256"] == hashlib.sha256(content).hexdigest()
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        fetched = await http.get(photo["url"])
    assert hashlib.sha256(fetched.content).hexdigest() == photo["sha256"]
    spool = live_server.settings.resolved_upload_spool_dir
    assert [p for p in spool.rglob("*")] == []
