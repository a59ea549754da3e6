"""Static cost analysis (schema/cost): costs computed by hand from the schema's directives.

Weights in the schema (`batchery schema`): a field that goes to the database `@cost(weight: 10)`,
an object 1, a scalar 0. List sizes: `first`/`limitTo` (default 100 / 15, capped at
max_page_size 1000), `Bakery.suppliers` assumed 5, `Supplier.bakeries` assumed 20, bulk
`errors` assumed 5, `products` unbounded (1000). Per field: weight + n * (1 + its selection).
"""

from __future__ import annotations

import pytest

from app.settings import Settings
from schema import schema
from schema.cost import Estimate, ShapeField
from schema.execution import Executor, GraphQLRequest
from tests.helpers import run

# No limit here, so that a document over it is still costed through `estimate`.
EXECUTOR = Executor(schema, Settings(max_operation_cost=0))
DB = 10  # @cost(weight: 10) on every field that reads or writes the database

KILLER = (
    "{ bakeries { suppliers { bakeries { suppliers { bakeries { suppliers { bakeries { suppliers {"
    " bakeries { suppliers { bakeries { suppliers { bakeries { suppliers { id } } } } } } } } } } }"
    " } } } }"
)


def cost(query: str, variables: dict | None = None, executor: Executor = EXECUTOR) -> int:
    request = GraphQLRequest(query, variables)
    estimate = executor.estimate(executor.prepare(query), request)
    assert estimate is not None
    return estimate.requested


def test_a_hello_costs_nothing():
    assert cost("{ __typename }") == 0


def test_introspection_costs_nothing():
    assert cost("{ __schema { types { name fields { name type { name } } } } }") == 0


def test_a_nested_page_multiplies_by_its_slicing_arguments():
    # bakeries: 10 + 10 bakeries * (1 + orders: 10 + 5 orders * (1 + 0))
    assert (
        cost("{ bakeries(first: 10) { name orders(limitTo: 5) { id writtenPhrase } } }")
        == (DB + 10 * (1 + DB + 5 * 1))
        == 170
    )


def test_absent_slicing_arguments_take_their_defaults():
    # first = 100, limitTo = 15
    assert cost("{ bakeries { id orders { id } } }") == DB + 100 * (1 + DB + 15 * 1) == 2610


def test_slicing_arguments_are_capped_by_the_max_page_size():
    capped = Executor(schema, Settings(max_page_size=4, max_operation_cost=0))
    # 10 + 4 * (1 + 10 + 4 * 1)
    query = "{ bakeries(first: 500) { orders(limitTo: 500) { id } } }"
    assert cost(query, executor=capped) == DB + 4 * (1 + DB + 4) == 70


def test_each_alias_counts_and_repeated_fields_merge():
    # a: 10 + 2 * 1; b: 10 + 3 * 1
    assert cost("{ a: bakeries(first: 2) { id } b: bakeries(first: 3) { id } }") == 12 + 13
    # the same response key twice is one field, as execution merges it: 10 + 2 * 1
    assert cost("{ bakeries(first: 2) { id } bakeries(first: 2) { name } }") == 12


def test_named_fragments_are_counted_where_they_are_spread():
    query = (
        '{ bakery(id: "1") { ...F } } '
        "fragment F on Bakery { orders(limitTo: 4) { id } manager { id } }"
    )
    # bakery: 10 + 1 * (1 + orders (10 + 4 * 1) + manager (10 + 1 * 1))
    assert cost(query) == DB + (1 + (DB + 4) + (DB + 1)) == 36


def test_inline_fragments_merge_with_the_fields_beside_them():
    query = (
        '{ bakery(id: "1") { orders(limitTo: 4) { id }'
        " ... on Bakery { orders(limitTo: 4) { bakery { id } } } } }"
    )
    # orders merged: 10 + 4 * (1 + bakery (10 + 1)); bakery: 10 + 1 * (1 + orders)
    orders = DB + 4 * (1 + (DB + 1))
    assert cost(query) == DB + (1 + orders) == 69


def test_unbounded_lists_cost_a_full_page():
    # products has no slicing argument and no assumed size: 10 + 1000 * 1
    assert cost("{ products { id } }") == DB + 1000 == 1010
    # `first: null` asks for no bound: a full page
    assert cost("{ bakeries(first: null) { id } }") == DB + 1000


def test_assumed_sizes_bound_lists_no_argument_bounds():
    # suppliers assumed 5, Supplier.bakeries assumed 20: 10 + 1 * (1 + 10 + 5 * (1 + 10 + 20 * 1))
    query = '{ bakery(id: "1") { suppliers { bakeries { id } } } }'
    assert cost(query) == DB + (1 + DB + 5 * (1 + DB + 20)) == 176


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"n": 7}, DB + 7),  # the variable's value
        ({}, DB + 3),  # the variable's default
        ({"n": 5000}, DB + 1000),  # capped
        ({"n": None}, DB + 1000),  # null: no bound
    ],
)
def test_variables_as_slicing_arguments(variables, expected):
    assert cost("query($n: Int = 3) { bakeries(first: $n) { id } }", variables) == expected


def test_an_absent_variable_without_default_leaves_the_argument_default():
    assert cost("query($n: Int) { bakeries(first: $n) { id } }", {}) == DB + 100


def test_variable_costs_are_cached_per_value_and_stay_right():
    query = "query($n: Int!) { bakeries(first: $n) { id } }"
    assert [cost(query, {"n": n}) for n in (1, 2, 1, 2)] == [11, 12, 11, 12]


def test_skip_and_include_are_honoured():
    query = (
        'query($with: Boolean!) { bakery(id: "1") { id suppliers @include(if: $with) { id }'
        " manager @skip(if: true) { id } } }"
    )
    # with suppliers: 10 + 1 * (1 + 10 + 5 * 1); without: 10 + 1 * 1
    assert cost(query, {"with": True}) == DB + (1 + DB + 5) == 26
    assert cost(query, {"with": False}) == DB + 1 == 11


def test_the_issue_query_costs_what_its_fan_out_says():
    def bakeries(inner: int, n: int = 20) -> int:
        return DB + n * (1 + inner)

    def suppliers(inner: int) -> int:
        return DB + 5 * (1 + inner)

    level = suppliers(0)  # suppliers { id }
    for _ in range(6):
        level = suppliers(bakeries(level))
    expected = bakeries(level, n=100)  # the root's `first` defaults to 100
    assert cost(KILLER) == expected == 1_666_666_666_666_610


def test_a_mutation_costs_its_write_and_its_result():
    # addMoney: 10 + 1 * (1 + 0)
    assert cost('mutation { addMoney(orderId: "1", dollarsToAdd: 5) { id currentTotal } }') == 11


def test_a_bulk_mutation_is_charged_per_record_sent():
    records = ", ".join(f'{{data: {{name: "b{i}"}}}}' for i in range(3))
    query = (
        f"mutation {{ batchBakeries(request: {{operation: CREATE, records: [{records}]}}) "
        "{ success results { index errors { code } data { id } } } }"
    )
    # 3 records: 10 * 3 + 1 * (1 + results: 3 * (1 + errors 5 * 1 + data 1))
    assert cost(query) == DB * 3 + (1 + 3 * (1 + 5 + 1)) == 52


def test_a_bulk_mutation_with_records_in_a_variable_is_charged_the_largest_batch():
    query = "mutation($r: BakeryBatchRequest!) { batchBakeries(request: $r) { success } }"
    # max_records_per_batch = 200: 10 * 200 + 1 * (1 + 0)
    assert cost(query, {"r": {"operation": "CREATE", "records": []}}) == DB * 200 + 1
    small = Executor(schema, Settings(max_records_per_batch=7, max_operation_cost=0))
    assert cost(query, {"r": {}}, executor=small) == DB * 7 + 1


def test_place_orders_is_sized_by_its_lines():
    query = (
        'mutation { placeOrders(orders: [{bakeryId: "1", productId: "1", quantity: 1, '
        'writtenPhrase: "a"}, {bakeryId: "1", productId: "2", quantity: 1, writtenPhrase: "b"}])'
        " { id } }"
    )
    # 10 * 2 lines + 2 orders * (1 + 0)
    assert cost(query) == DB * 2 + 2 == 22


def test_an_operation_is_chosen_by_name():
    query = "query A { bakeries(first: 1) { id } } query B { bakeries(first: 2) { id } }"
    executor = EXECUTOR
    prepared = executor.prepare(query)
    a = executor.estimate(prepared, GraphQLRequest(query, None, "A"))
    b = executor.estimate(prepared, GraphQLRequest(query, None, "B"))
    none = executor.estimate(prepared, GraphQLRequest(query, None, None))
    assert (a.requested, b.requested, none) == (11, 12, None)


def test_the_actual_cost_counts_a_list_of_plain_objects_by_its_length():
    class Untouchable(dict):
        def __getitem__(self, key):
            raise AssertionError("a list whose items have only scalars must not be walked")

        __contains__ = __getitem__

    shape = (ShapeField("orders", DB, 1, True, ()),)
    assert Estimate(0, shape).actual({"orders": [Untouchable()] * 7}) == DB + 7


async def test_the_actual_cost_uses_the_real_list_sizes(read_engine):
    # READ_SEED: 50 bakeries, each with exactly 3 suppliers.
    query = "{ bakeries { id suppliers { id } } }"
    outcome = await run(read_engine, query)
    estimate = EXECUTOR.estimate(EXECUTOR.prepare(query), GraphQLRequest(query))
    # requested: 10 + 100 * (1 + 10 + 5 * 1); actual: 10 + 50 * (1 + 10 + 3 * 1)
    assert estimate.requested == DB + 100 * (1 + DB + 5) == 1610
    assert estimate.actual(outcome.data) == DB + 50 * (1 + DB + 3) == 710


def test_a_document_over_the_limit_whatever_its_variables_is_refused_before_validation():
    limited = Executor(schema, Settings())
    prepared = limited.prepare(KILLER)
    assert prepared.refused_cost == cost(KILLER)
    [error] = prepared.errors
    assert error.message.startswith("The operation's cost is 1666666666666610, over the limit")
    # variables could lower a cost: the floor takes them at their least (0 items, skipped)
    big = "x: bakeries(first: 1000) %s { orders(limitTo: 1000) { id } }"
    query = "query($n: Int, $s: Boolean!) { bakeries(first: $n) { id } %s }"
    lower = limited.prepare(query % (big % "@skip(if: $s)"))
    assert lower.document is not None  # its floor (10 + 0 items) is within the limit
    over = limited.prepare(query % (big % ""))
    # 10 + 0 items; x: 10 + 1000 * (1 + 10 + 1000 * 1)
    assert over.refused_cost == DB + DB + 1000 * (1 + DB + 1000) == 1_011_020
    assert "cost is at least 1011020" in over.errors[0].message


def test_a_fragment_spread_under_many_aliases_is_costed_once_per_shape():
    # 13 levels of 10 aliases, each spreading the next level: 10^13 paths through the document.
    # (Strawberry's alias limit expands fragments to count, which takes seconds from 5 levels
    # on: the cost, linear in the document, refuses it before validation starts.)
    def level(i: int) -> str:
        on, field = ("Bakery", "suppliers") if i % 2 == 0 else ("Supplier", "bakeries")
        spreads = " ".join(f"a{j}: {field} {{ ...L{i + 1} }}" for j in range(10))
        return f"fragment L{i} on {on} {{ {spreads} }}"

    fragments = " ".join(level(i) for i in range(13)) + " fragment L13 on Supplier { id }"
    query = '{ bakery(id: "1") { ...L0 } } ' + fragments
    inner = 0  # L13: { id }
    for i in reversed(range(13)):
        n = 5 if i % 2 == 0 else 20  # suppliers of a bakery, bakeries of a supplier
        inner = 10 * (DB + n * (1 + inner))  # 10 aliases of the list field
    expected = DB + (1 + inner)
    prepared = Executor(schema, Settings()).prepare(query)
    assert prepared.refused_cost == expected > 10**13


async def test_an_operation_over_the_limit_is_refused_before_any_statement(read_engine):
    outcome = await run(read_engine, KILLER)
    assert outcome.statements == 0
    assert outcome.data is None
    [error] = outcome.errors
    assert error["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert "1666666666666610" in error["message"]
    assert "BATCHERY_MAX_OPERATION_COST" in error["message"]


async def test_the_operation_limit_can_be_turned_off(read_engine):
    query = "{ bakeries(first: 3) { id } }"
    refused = await run(read_engine, query, settings=Settings(max_operation_cost=12))
    allowed = await run(read_engine, query, settings=Settings(max_operation_cost=0))
    assert refused.errors[0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert refused.errors[0]["extensions"]["limit"] == 12
    assert len(allowed.data["bakeries"]) == 3
