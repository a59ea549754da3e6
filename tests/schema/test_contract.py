"""Our SDL against the binding contract in ../shared/contract/schema.graphql."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from schema import schema

CONTRACT = Path(__file__).resolve().parents[2].parent / "shared" / "contract" / "schema.graphql"


@pytest.fixture(scope="module")
def contract():
    if not CONTRACT.is_file():
        raise FileNotFoundError(f"the contract must be at {CONTRACT} (../shared beside the repo)")
    return build_schema(CONTRACT.read_text())


# Parts of the contract that open issues add (uploads: issue 3; bulk mutations: issue 4). The
# test below fails as soon as this list and reality differ, so it cannot go stale.
NOT_YET_BUILT = {
    "Upload", "BatchOperationType", "BatchOptions", "BakeryInput", "BakeryBatchRecord",
    "BakeryBatchRequest", "CakeOrderInput", "CakeOrderBatchRecord", "CakeOrderBatchRequest",
    "PlaceOrderInput", "RecordError", "BatchMeta", "Float", "BakeryBatchResult",
    "BakeryBatchResponse", "CakeOrderBatchResult", "CakeOrderBatchResponse",
    "Mutation.uploadOrderPhoto", "Mutation.batchBakeries", "Mutation.batchCakeOrders",
    "Mutation.deleteManyBakeries", "Mutation.placeOrders",
}  # fmt: skip


def subject(description: str) -> str:
    """'Field Mutation.x was removed.' -> 'Mutation.x'; 'Upload was removed.' -> 'Upload'."""
    words = description.split()
    return (
        words[1]
        if words[0] in {"Field", "Standard"} and words[1] != "scalar"
        else (words[2] if words[1] == "scalar" else words[0])
    )


def test_no_breaking_change_against_the_contract(contract):
    # A breaking change is anything a client of the contract could notice: a missing type or
    # field, a changed type or nullability, a removed argument, a missing enum value.
    changes = find_breaking_changes(contract, schema._schema)
    assert {subject(c.description) for c in changes} == NOT_YET_BUILT
    assert all("removed" in c.description for c in changes), [c.description for c in changes]


def test_no_dangerous_change_against_the_contract(contract):
    # Dangerous changes include a changed argument default (e.g. `orders(limitTo: Int = 15)`).
    assert [c.description for c in find_dangerous_changes(contract, schema._schema)] == []
