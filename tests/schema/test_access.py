"""The scope rule lives in the schema (`@requiresScopes`, in the SDL) and is checked per operation
at the execution seam, before either executor runs anything: 0 SQL statements when refused."""

from __future__ import annotations

import pytest

from app.settings import Settings
from schema import schema
from schema.access import INTERNAL, Caller, Need, ScopeRules
from schema.context import Context
from tests.helpers import run

RULES = ScopeRules(schema._schema)


def needs(query: str) -> set[tuple[str, str]]:
    from graphql import parse

    [(_, found)] = RULES.needs(parse(query)).items()
    return {(need.scope, need.coordinate) for need in found}


def test_the_rule_is_in_the_sdl():
    sdl = schema.as_str()
    assert "directive @requiresScopes(scopes: [String!]!) on OBJECT | FIELD_DEFINITION" in sdl
    assert 'type Query @requiresScopes(scopes: ["read"])' in sdl
    for field in ("batchBakeries", "batchCakeOrders", "deleteManyBakeries", "placeOrders"):
        line = next(line for line in sdl.splitlines() if line.strip().startswith(field + "("))
        assert '@requiresScopes(scopes: ["bulk"])' in line, line
    for field in ("addMoney", "uploadOrderPhoto"):
        line = next(line for line in sdl.splitlines() if line.strip().startswith(field + "("))
        assert '@requiresScopes(scopes: ["write"])' in line, line


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ bakeries { id orders { id } } }", {("read", "Query.bakeries")}),
        ("{ __typename }", {("read", "Query.__typename")}),
        ("{ __schema { types { name } } }", {("read", "Query.__schema")}),
        (
            "{ a: auditTrail { id } b: bakery(id: 1) { id } }",
            {("read", "Query.auditTrail"), ("admin", "Query.auditTrail")},
        ),
        (
            "query { ...F } fragment F on Query { ... on Query { auditTrail { id } } }",
            {("read", "Query.auditTrail"), ("admin", "Query.auditTrail")},
        ),
        (
            'mutation { x: addMoney(orderId: "1", dollarsToAdd: 1) { id } '
            "deleteManyBakeries(ids: []) { success } }",
            {("write", "Mutation.addMoney"), ("bulk", "Mutation.deleteManyBakeries")},
        ),
    ],
)
def test_an_operation_needs_the_scopes_of_every_field_it_selects(query, expected):
    assert needs(query) == expected


def test_each_operation_of_a_document_has_its_own_needs():
    from graphql import parse

    document = parse(
        "query Q { bakeries { id } } mutation M { deleteManyBakeries(ids: []) { success } }"
    )
    found = RULES.needs(document)
    assert found["Q"] == (Need("read", "Query.bakeries"),)
    assert found["M"] == (Need("bulk", "Mutation.deleteManyBakeries"),)


@pytest.mark.parametrize("compiled", [True, False])
async def test_a_refused_operation_runs_no_sql_in_either_executor(read_engine, compiled):
    settings = Settings(compiled_execution=compiled)
    caller = Caller("key:abc", frozenset({"write"}), authenticated=True)
    context = Context.create(read_engine, settings, caller=caller)
    outcome = await run(
        read_engine,
        "{ bakeries(first: 3) { id orders { id } } }",
        settings=settings,
        context=context,
    )
    assert outcome.data is None
    assert outcome.errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert outcome.statements == 0
    allowed = await run(
        read_engine,
        "{ bakeries(first: 3) { id orders { id } } }",
        settings=settings,
        context=Context.create(read_engine, settings, caller=INTERNAL),
    )
    assert len(allowed.data["bakeries"]) == 3


async def test_a_caller_without_a_credential_is_told_to_authenticate(read_engine):
    caller = Caller("anonymous", frozenset())
    settings = Settings()
    context = Context.create(read_engine, settings, caller=caller)
    outcome = await run(read_engine, "{ products { name } }", settings=settings, context=context)
    assert outcome.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
