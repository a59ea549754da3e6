"""GraphQL over HTTP, row by row of the contract's request table: methods, media types, status
codes, and a message in every refusal."""

from __future__ import annotations

import json

import pytest
from graphql import get_introspection_query
from sqlalchemy import text

from app.http import graphiql
from tests.helpers import without_cost

GQL_RESPONSE = "application/graphql-response+json"
PRODUCTS = "{ products { name stock } }"


def only_error(body: dict) -> dict:
    assert set(without_cost(body)) == {"errors"}, body
    assert len(body["errors"]) == 1, body
    return body["errors"][0]


# ---- GET ----


async def test_get_with_html_accept_serves_graphiql(client):
    response = await client.get("/graphql", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "GraphiQL" in response.text


async def test_graphiql_can_be_turned_off(app_client):
    async with app_client(graphiql=False) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert "application/json" in only_error(response.json())["message"]


async def test_graphiql_page_posts_with_the_preflight_header(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    if graphiql.assets_present():
        assert '"GraphQL-Preflight": "1"' in response.text
    else:
        assert "make graphiql" in response.text


@pytest.mark.parametrize("assets", [True, False])
async def test_graphiql_page_declares_an_icon_so_browsers_ask_for_no_favicon(
    client, monkeypatch, assets
):
    monkeypatch.setattr(graphiql, "assets_present", lambda: assets)
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert ("make graphiql" in response.text) is not assets
    assert '<link rel="icon" href="data:,">' in response.text


async def test_get_runs_a_query(client):
    response = await client.get("/graphql", params={"query": PRODUCTS})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["data"]["products"][0]["name"] == "Sponge base"


async def test_get_takes_variables_and_operation_name_as_json_text(client):
    response = await client.get(
        "/graphql",
        params={
            "query": "query A { products { id } } query B($id: ID!) { bakery(id: $id) { id } }",
            "variables": json.dumps({"id": "2"}),
            "operationName": "B",
        },
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"bakery": {"id": "2"}}}


async def test_get_with_variables_that_are_not_json_is_400(client):
    response = await client.get("/graphql", params={"query": PRODUCTS, "variables": "{nope"})
    assert response.status_code == 400
    error = only_error(response.json())
    assert error["message"].startswith("The `variables` parameter is not valid JSON")
    assert error["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("accept", ["application/json", GQL_RESPONSE])
async def test_get_refuses_a_mutation_with_405_and_allow_post(client, engine, accept):
    mutation = 'mutation { addMoney(orderId: "1", dollarsToAdd: 5) { currentTotal } }'
    async with engine.connect() as conn:
        before = (
            await conn.execute(text("SELECT current_total FROM cake_orders WHERE id = 1"))
        ).scalar_one()
    response = await client.get("/graphql", params={"query": mutation}, headers={"Accept": accept})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith(accept)
    error = only_error(response.json())
    assert "POST" in error["message"]
    assert error["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    async with engine.connect() as conn:
        after = (
            await conn.execute(text("SELECT current_total FROM cake_orders WHERE id = 1"))
        ).scalar_one()
    assert after == before


async def test_get_runs_the_query_of_a_document_that_also_has_a_mutation(client):
    document = (
        "query Q { products { id } } mutation M { addMoney(orderId: 1, dollarsToAdd: 1) { id } }"
    )
    response = await client.get("/graphql", params={"query": document, "operationName": "Q"})
    assert response.status_code == 200
    assert response.json()["data"]["products"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_get_a_json_405(client, method):
    response = await client.request(method, "/graphql", json={"query": PRODUCTS})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert method in only_error(response.json())["message"]


# ---- POST and media types ----


async def test_post_json_object_gets_one_response_as_application_json(client):
    response = await client.post("/graphql", json={"query": PRODUCTS})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert len(response.json()["data"]["products"]) == 4


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (GQL_RESPONSE, GQL_RESPONSE),
        (f"{GQL_RESPONSE}, application/json;q=0.9", GQL_RESPONSE),
        (f"{GQL_RESPONSE};q=0.5, application/json", "application/json"),
        (f"application/json, {GQL_RESPONSE}", GQL_RESPONSE),
        (f"{GQL_RESPONSE}; charset=utf-8", GQL_RESPONSE),
        ("text/html, */*;q=0.1", "application/json"),
    ],
)
async def test_response_media_type_follows_accept(client, accept, expected):
    headers = {"Accept": accept} if accept else {}
    if accept is None:
        headers["Accept"] = ""
    response = await client.post("/graphql", json={"query": PRODUCTS}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{expected}; charset=utf-8"


async def test_accept_with_no_json_type_is_406(client):
    response = await client.post(
        "/graphql", json={"query": PRODUCTS}, headers={"Accept": "text/plain, image/png"}
    )
    assert response.status_code == 406
    error = only_error(response.json())
    assert GQL_RESPONSE in error["message"] and "application/json" in error["message"]
    assert error["extensions"]["code"] == "NOT_ACCEPTABLE"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/json; charset=latin-1",
        None,
    ],
)
async def test_unsupported_content_types_are_415_naming_the_accepted_types(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=b'{"query": "{ products { id } }"}', headers=headers
    )
    assert response.status_code == 415
    error = only_error(response.json())
    assert "application/json" in error["message"] and "multipart/form-data" in error["message"]
    assert error["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_utf8_charset_is_accepted(client):
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": '{ findBaker(lastName: "Ünknown🏃") { id } }'}).encode(),
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert response.status_code == 200
    assert without_cost(response.json()) == {"data": {"findBaker": None}}


# ---- malformed bodies and parameters ----


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The request body is empty"),
        (b"   ", "The request body is empty"),
        (b'{ "not a JSON', "The request body is not valid JSON"),
        (b"42", "The request is a number"),
        (b'"{ products { id } }"', "The request is a string"),
        (b"null", "The request is null"),
    ],
)
async def test_bodies_that_are_not_requests_are_400(client, body, message):
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = only_error(response.json())
    assert error["message"].startswith(message), error
    assert error["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("accept", ["application/json", GQL_RESPONSE])
@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"qeury": PRODUCTS}, "The operation has no `query`"),
        ({"query": None}, "The operation has no `query`"),
        ({"query": 0}, "`query` must be a string (a GraphQL document), not a number"),
        ({"query": {"a": 1}}, "`query` must be a string (a GraphQL document), not an object"),
        (
            {"query": PRODUCTS, "variables": "{}"},
            "`variables` must be an object or null, not a string",
        ),
        (
            # A list is a variable batch (test_variable_batches.py); an empty one has no set.
            {"query": PRODUCTS, "variables": []},
            "`variables` is an empty list",
        ),
        ({"query": PRODUCTS, "operationName": 7}, "`operationName` must be a string or null"),
        ({"query": PRODUCTS, "extensions": False}, "`extensions` must be an object or null"),
    ],
)
async def test_bad_parameters_of_a_lone_operation_are_400(client, accept, request_body, message):
    response = await client.post("/graphql", json=request_body, headers={"Accept": accept})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(accept)
    error = only_error(response.json())
    assert error["message"].startswith(message), error
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_an_unknown_persisted_query_is_400_not_found(client):
    # The rest of persisted documents: test_persisted.py.
    response = await client.post(
        "/graphql",
        json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}},
    )
    assert response.status_code == 400
    assert only_error(response.json())["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_null_variables_operation_name_and_extensions_are_fine(client):
    response = await client.post(
        "/graphql",
        json={"query": PRODUCTS, "variables": None, "operationName": None, "extensions": None},
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


# ---- request errors: 200 with application/json, 400 with application/graphql-response+json ----

REQUEST_ERRORS = [
    ({"query": "{ products { id }"}, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    ({"query": "{ products { colour } }"}, "GRAPHQL_VALIDATION_FAILED", "colour"),
    (
        {"query": "query($id: ID!) { bakery(id: $id) { id } }", "variables": {"id": None}},
        "BAD_USER_INPUT",
        "$id",
    ),
    (
        {"query": "query($id: ID!) { bakery(id: $id) { id } }"},
        "BAD_USER_INPUT",
        "$id",
    ),
    (
        {"query": "query A { products { id } }", "operationName": "B"},
        "OPERATION_RESOLUTION_FAILURE",
        "Unknown operation named 'B'",
    ),
    (
        {"query": "query A { products { id } } query B { products { name } }"},
        "OPERATION_RESOLUTION_FAILURE",
        "operationName",
    ),
]


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (GQL_RESPONSE, 400)])
@pytest.mark.parametrize(("request_body", "code", "message"), REQUEST_ERRORS)
async def test_request_errors_have_no_data_and_a_code(
    client, accept, status, request_body, code, message
):
    response = await client.post("/graphql", json=request_body, headers={"Accept": accept})
    assert response.status_code == status
    body = response.json()
    assert "data" not in body
    assert body["errors"], body
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


async def test_a_field_error_keeps_data_and_status_200_even_with_graphql_response_json(client):
    response = await client.post(
        "/graphql",
        json={
            "query": '{ a: bakery(id: "1") { id } b: bakeries(first: -1) { id } }',
        },
        headers={"Accept": GQL_RESPONSE},
    )
    assert response.status_code == 200
    body = response.json()
    # `bakeries` is non-null, so its error nulls `data`, which is still present: execution ran.
    assert "data" in body and body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["b"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "first must be zero or more" in error["message"]


async def test_a_resolver_error_in_a_mutation_is_reported_with_its_code(client):
    response = await client.post(
        "/graphql",
        json={"query": 'mutation { addMoney(orderId: "999999", dollarsToAdd: 1) { id } }'},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["errors"][0]["path"] == ["addMoney"]


async def test_an_upload_sent_as_json_is_refused_with_how_to_send_a_file(client):
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($f: Upload!) { uploadOrderPhoto(orderId: 1, file: $f) { id } }",
            "variables": {"f": "cake.jpg"},
        },
    )
    assert response.status_code == 200
    error = only_error(response.json())
    assert "multipart/form-data" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# ---- limits ----


async def test_query_depth_over_the_limit_is_an_error_naming_it(app_client):
    # Deep but cheap: one over the cost limit would be refused for its cost before validation.
    deep = '{ bakery(id: "1") { manager { bakery { manager { bakery { id } } } } } }'
    async with app_client(max_query_depth=3) as client:
        response = await client.post("/graphql", json={"query": deep})
        shallow = await client.post("/graphql", json={"query": "{ bakeries { suppliers { id } } }"})
    assert response.status_code == 200
    error = only_error(response.json())
    assert "exceeds maximum operation depth of 3" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "errors" not in shallow.json()


async def test_aliases_over_the_limit_are_an_error_naming_it(app_client):
    query = "{ " + " ".join(f"a{i}: products {{ id }}" for i in range(6)) + " }"
    async with app_client(max_aliases=5) as client:
        response = await client.post("/graphql", json={"query": query})
    error = only_error(response.json())
    assert "5" in error["message"] and "aliases" in error["message"]


async def test_tokens_over_the_limit_are_a_parse_error_naming_it(app_client):
    async with app_client(max_query_tokens=20) as client:
        response = await client.post(
            "/graphql", json={"query": "{ " + "products { id } " * 10 + "}"}
        )
    error = only_error(response.json())
    assert "20 tokens" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize(
    ("changes", "setting", "limit"),
    [
        ({"max_operations_bytes": 200}, "BATCHERY_MAX_OPERATIONS_BYTES", 200),
        ({"max_body_bytes": 150}, "BATCHERY_MAX_BODY_BYTES", 150),
    ],
)
async def test_a_json_body_over_the_smaller_limit_is_413_naming_it(
    app_client, changes, setting, limit
):
    body = {"query": "{ products { id } }", "variables": {"padding": "x" * 300}}
    async with app_client(**changes) as client:
        response = await client.post("/graphql", json=body)
        small = await client.post("/graphql", json={"query": PRODUCTS})
    assert response.status_code == 413
    error = only_error(response.json())
    assert (
        error["message"] == f"The JSON body is too large (limit: {limit} bytes, set by {setting})"
    )
    assert error["extensions"] == {"code": "BODY_TOO_LARGE", "limit": limit, "setting": setting}
    assert small.status_code == 200


async def test_first_and_limit_to_over_the_page_cap_are_capped(app_client):
    async with app_client(max_page_size=3) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ bakeries(first: 1000) { id orders(limitTo: 1000) { id } } }"},
        )
    body = response.json()
    assert "errors" not in body
    assert len(body["data"]["bakeries"]) == 3
    assert all(len(bakery["orders"]) == 3 for bakery in body["data"]["bakeries"])


# ---- GraphiQL's own requests ----


async def test_graphiql_introspection_passes_the_limits(client):
    response = await client.post(
        "/graphql",
        json={"query": get_introspection_query(), "operationName": "IntrospectionQuery"},
        headers={
            "Accept": f"{GQL_RESPONSE}, application/json, multipart/mixed",
            "GraphQL-Preflight": "1",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Bakery", "Upload", "Photo"} <= names


async def test_fields_overlapping_past_the_budget_are_an_error_naming_it(app_client):
    # 500 fields named `bakery` in one selection set: 1.4 s of validation on the event loop.
    query = "{ " + " ".join(f'bakery(id: "{i}") {{ name }}' for i in range(500)) + " }"
    async with app_client() as client:
        response = await client.post("/graphql", json={"query": query})
    error = only_error(response.json())
    assert "more than 10000 comparisons" in error["message"]
    assert "BATCHERY_MAX_FIELD_OVERLAPS" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
