"""The depth and alias rules answer as Strawberry's limiters do, in time linear in the document."""

from __future__ import annotations

import threading

import pytest
from graphql import parse, validate
from strawberry.extensions.max_aliases import create_validator as strawberry_aliases
from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth

from app.settings import Settings
from schema import schema
from schema.document_limits import field_overlaps, max_aliases_rule, max_depth_rule
from schema.execution import Executor

DOCUMENTS = [
    "{ bakeries { name } }",
    "{ a: bakeries { b: name orders { c: id bakery { d: name } } } }",
    "query Deep { bakeries { orders { bakery { orders { bakery { name } } } } } }",
    "{ bakeries { ...B } } fragment B on Bakery { x: name orders { ...O } } "
    "fragment O on CakeOrder { y: id bakery { z: name } }",
    "{ bakeries { ... on Bakery { k: name suppliers { bakeries { name } } } } }",
    "{ __schema { types { fields { type { ofType { name } } } } } }",
    "query One { a: bakeries { name } } query Two { b: products { name } }",
    "{ bakeries { ...B ...B } } fragment B on Bakery { n: name manager { m: id } }",
]


def messages(document: str, rule: type) -> list[str]:
    return [error.message for error in validate(schema._schema, parse(document), [rule])]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("limit", [0, 1, 2, 3, 4, 15])
def test_depth_refusals_match_strawberry(document, limit):
    assert sorted(set(messages(document, max_depth_rule(limit)))) == sorted(
        set(messages(document, strawberry_depth(limit, None)))
    )


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("limit", [0, 1, 2, 3, 200])
def test_alias_refusals_match_strawberry(document, limit):
    assert messages(document, max_aliases_rule(limit)) == messages(
        document, strawberry_aliases(limit)
    )


def fragment_tower(levels: int, leaf: str) -> str:
    """Each fragment spreads the one below it ten times: 10**levels fields once expanded."""
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [
        f"fragment F{n} on Query {{ {' '.join([f'...F{n - 1}'] * 10)} }}" for n in range(1, levels)
    ]
    return f"{{ ...F{levels - 1} }}\n" + "\n".join(fragments)


def within(seconds: float, work: callable) -> list[str]:
    """Run `work` in a thread; a rule that walks the expansion would never return, so fail
    instead of hanging the suite (10**40 fields is past any machine, the bound is no race)."""
    answers: list[list[str]] = []
    thread = threading.Thread(target=lambda: answers.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert answers, f"validation did not finish within {seconds} s"
    return answers[0]


def test_a_tower_of_fragments_is_measured_without_expanding_it():
    document = fragment_tower(40, "x: __typename")
    assert within(10, lambda: messages(document, max_aliases_rule(200))) == [
        f"{10**39} aliases found. Allowed: 200"
    ]
    assert within(10, lambda: messages(document, max_depth_rule(15))) == []


def test_a_deep_tower_of_fragments_is_refused_by_depth():
    fragments = ["fragment D0 on Bakery { name }"]
    fragments += [
        f"fragment D{n} on Bakery {{ suppliers {{ bakeries {{ ...D{n - 1} ...D{n - 1} }} }} }}"
        for n in range(1, 40)
    ]
    document = "{ bakeries { ...D39 } }\n" + "\n".join(fragments)
    assert within(10, lambda: messages(document, max_depth_rule(15))) == [
        "'anonymous' exceeds maximum operation depth of 15"
    ]


def test_a_fragment_spread_inside_itself_counts_as_nothing():
    document = "{ ...Q } fragment Q on Query { a: __typename ...Q }"
    assert messages(document, max_aliases_rule(0)) == ["1 aliases found. Allowed: 0"]
    assert messages(document, max_depth_rule(0)) == []


# ---- fields sharing a response name: what the overlap rule compares ----
# graphql-core's OverlappingFieldsCanBeMerged compares every pair of fields sharing a response
# name in a selection set, and their sub-fields pair by pair: 500 `bakery(id: "<i>")` in one
# selection set (13 KB) took 1.4 s on the event loop, five repeats a level eight levels deep
# 1.1 s, and a batch sends 100 documents. Counted first, in at most `budget` steps.


@pytest.mark.parametrize(
    ("document", "pairs"),
    [
        ("{ products { name } }", 0),
        ("{ a: products { name } a: bakeries { name } }", 2),  # a-a, then name-name inside
        ("{ products { name ... on Product { name } ...P } } fragment P on Product { name }", 3),
        # A fragment spread twice in one selection set is compared once.
        ("{ products { ...P ...P } } fragment P on Product { name }", 0),
        ("{ bakeries { name orders { id id } } }", 1),
        # Pairs of pairs: 3 `orders` (3 pairs), each pair comparing 2 x 2 `id`s (4), plus the
        # single pair inside each of the 3 sets: 3 + 3 * 4 + 3.
        ("{ bakeries { " + "orders { id id } " * 3 + "} }", 18),
        # A fragment spread inside itself is followed once, no more (NoFragmentCycles refuses
        # it anyway): Q's set holds `products` twice (1 pair, whose 2 x 2 `name`s make 4),
        # plus the pair inside `products { name name }`.
        ("{ ...Q } fragment Q on Query { products { name name } ...Q }", 6),
    ],
)
def test_the_pairs_the_overlap_rule_compares_are_counted(document, pairs):
    assert field_overlaps(parse(document), budget=1000) == pairs


def test_counting_stops_just_past_the_budget():
    document = parse("{ " + " ".join(f'bakery(id: "{i}") {{ name }}' for i in range(500)) + " }")
    assert field_overlaps(document, budget=100) == 101


def nested(repeats: int, levels: int) -> str:
    selection = "id "
    for _ in range(levels):
        selection = ("bakery { orders(limitTo: 1) { " + selection + "} } ") * repeats
    return "{ cakeOrder(id: 1) { " + selection + "} }"


# Five repeats a level, four `bakery { orders }` levels: 1.1 s of validation.
NESTED_FIVE_TIMES = nested(5, 4)


@pytest.mark.parametrize(
    "document",
    [
        "{ " + " ".join(f'bakery(id: "{i}") {{ name }}' for i in range(500)) + " }",
        NESTED_FIVE_TIMES,
    ],
)
def test_a_document_over_the_overlap_budget_is_refused_before_validation(document):
    prepared = Executor(schema, Settings()).prepare(document)
    [error] = prepared.errors
    assert "more than 10000 comparisons" in error.message
    assert "BATCHERY_MAX_FIELD_OVERLAPS" in error.message


def test_twenty_fragments_sharing_fields_are_well_within_the_default():
    fragments = " ".join(
        f"fragment F{i} on Bakery {{ id name orders(limitTo: 1) {{ id }} }}" for i in range(20)
    )
    spreads = " ".join(f"...F{i}" for i in range(20))
    prepared = Executor(schema, Settings()).prepare(f"{{ bakeries {{ {spreads} }} }} {fragments}")
    assert prepared.errors == () and prepared.document is not None


# ---- operations in one document ----
# Only one operation of a document runs, but every one of them is validated, costed and
# scoped: 1,000 small operations in a 33 KB document took 0.6-1.3 s to prepare on the event loop.


def test_a_document_with_more_operations_than_the_limit_is_refused_before_analysis():
    document = " ".join(f"query Q{i} {{ products {{ name }} }}" for i in range(1000))
    prepared = Executor(schema, Settings()).prepare(document)
    [error] = prepared.errors
    assert error.message == (
        "The document holds 1000 operations, more than 64: send only the operation to run, or "
        "a few (a server limit, set by BATCHERY_MAX_DOCUMENT_OPERATIONS)."
    )
    assert error.extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_a_document_with_several_operations_within_the_limit_is_prepared():
    document = " ".join(f"query Q{i} {{ products {{ name }} }}" for i in range(64))
    prepared = Executor(schema, Settings()).prepare(document)
    assert prepared.errors == () and len(prepared.operations) == 64
