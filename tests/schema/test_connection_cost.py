"""The connections' static cost (schema/cost): `first` slices `edges`, as
`@listSize(slicingArguments: ["first"], sizedFields: ["edges"])` says, so a page costs what its
list twin does plus one object per edge (and the connection and its pageInfo), and `totalCount`
one database read.

Weights as in tests/schema/test_cost.py: a database field 10, an object 1, a scalar 0; per field
weight + n * (1 + its selection)."""

from __future__ import annotations

from app.settings import Settings
from schema import schema
from schema.execution import Executor
from tests.schema.test_cost import DB, cost

PAGE_INFO = "pageInfo { hasNextPage endCursor }"


def test_a_bakeries_page_costs_one_object_per_edge_of_first():
    # bakeriesConnection: 10 + 1 * (1 + edges: 7 * (1 + node: 1 * (1 + 0)) + pageInfo: 1 * (1 + 0))
    query = (
        "{ bakeriesConnection(first: 7) { edges { cursor node { id name } } " + PAGE_INFO + " } }"
    )
    assert cost(query) == DB + (1 + 7 * (1 + 1) + 1) == 26


def test_a_page_of_pages_multiplies_like_the_lists():
    connections = (
        "{ bakeriesConnection(first: 10) { edges { node { name "
        "ordersConnection(first: 5) { edges { node { id } } } } } } }"
    )
    # ordersConnection: 10 + 1 * (1 + 5 * (1 + 1)) = 21; a bakery edge: 1 + (1 + 21) = 23
    assert cost(connections) == DB + (1 + 10 * (1 + (1 + DB + (1 + 5 * 2)))) == 241
    lists = "{ bakeries(first: 10) { name orders(limitTo: 5) { id } } }"
    assert cost(lists) == 170  # the twin: the connections add their edges and wrappers only


def test_absent_first_takes_its_default_and_total_count_is_a_database_read():
    # defaults: bakeriesConnection 100, ordersConnection 15
    query = (
        "{ bakeriesConnection { totalCount edges { node { ordersConnection { totalCount } } } } }"
    )
    # ordersConnection without edges: 10 + 1 * (1 + totalCount 10)
    inner = DB + (1 + DB)
    assert cost(query) == DB + (1 + DB + 100 * (1 + (1 + inner)))


def test_first_is_capped_by_the_max_page_size_in_the_cost_too():
    capped = Executor(schema, Settings(max_page_size=4, max_operation_cost=0))
    query = "{ bakeriesConnection(first: 500) { edges { node { id } } } }"
    assert cost(query, executor=capped) == DB + (1 + 4 * (1 + 1))
