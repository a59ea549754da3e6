"""Our schema against the binding contract: nothing the contract has may be missing or changed.

The contract lives beside the repository (`../shared/contract/schema.graphql`), not in it: a clone
on its own skips these checks (its own SDL is `schema.graphql`, checked by test_sdl_file.py); on
CI (`CI=true`) a missing contract fails the run, as a missing live tool does.
"""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLInputField,
    GraphQLInputObjectType,
    Undefined,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    value_from_ast,
)

from schema import schema
from tests.live.required import unavailable

CONTRACT = Path(__file__).resolve().parents[2].parent / "shared" / "contract" / "schema.graphql"


def contract_default(field: GraphQLInputField) -> object:
    # A schema built from SDL keeps defaults as syntax; read them as values.
    node = field.ast_node
    if node is None or node.default_value is None:
        return Undefined
    return value_from_ast(node.default_value, field.type)


def contract_schema():
    if not CONTRACT.is_file():
        unavailable(f"the shared contract is not beside this clone: {CONTRACT}")
    return build_schema(CONTRACT.read_text())


def test_contract_file_declares_the_upload_scalar():
    assert contract_schema().get_type("Upload") is not None


def test_no_breaking_change_against_the_contract():
    changes = find_breaking_changes(contract_schema(), schema._schema)
    assert [change.description for change in changes] == []


def test_no_dangerous_change_against_the_contract():
    # Dangerous changes include a changed argument default (e.g. `orders(limitTo: Int = 15)`).
    changes = find_dangerous_changes(contract_schema(), schema._schema)
    assert [change.description for change in changes] == []


def test_input_field_defaults_and_nullability_match_the_contract():
    # find_breaking_changes does not compare input field defaults; the contract binds them.
    contract = contract_schema()
    ours = schema._schema
    compared = 0
    for name, contract_type in contract.type_map.items():
        if not isinstance(contract_type, GraphQLInputObjectType) or name.startswith("__"):
            continue
        our_type = ours.get_type(name)
        assert isinstance(our_type, GraphQLInputObjectType), name
        for field_name, field in contract_type.fields.items():
            our_field = our_type.fields[field_name]
            assert str(our_field.type) == str(field.type), f"{name}.{field_name}"
            assert our_field.default_value == contract_default(field), f"{name}.{field_name}"
            compared += 1
    assert compared >= 25
