"""Who may run what: the scopes each field needs, declared in the schema, checked per operation.

The rule lives in the schema as the `@requiresScopes(scopes: [...])` directive (printed by
`batchery schema`, so clients can read it), on object types (every field of the type needs it)
and on fields (that field needs it too). Before an operation runs, `Executor.execute` compares
the scopes every field it selects needs (fragments and aliases included, computed once per cached
document) with the caller's: an operation that needs a scope the caller lacks never runs, whatever
executes it (graphql-core or the compiled plans), and fails alone with `FORBIDDEN` naming the
scope. Every transport (JSON, batches, multipart) reaches the schema through that one check; the
REST façade uses the same scope names (`READ`, `WRITE`, `BULK`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql.utilities import separate_operations
from strawberry.schema_directive import Location

READ = "read"
WRITE = "write"
BULK = "bulk"
ADMIN = "admin"
SCOPES = (READ, WRITE, BULK, ADMIN)
DEFINITION = "strawberry-definition"


@strawberry.schema_directive(
    name="requiresScopes",
    locations=[Location.OBJECT, Location.FIELD_DEFINITION],
    description="The caller needs every one of these scopes (an API key's scopes) to select "
    "this field, or any field of this type.",
)
class RequiresScopes:
    scopes: list[str]


def requires(*scopes: str) -> list[object]:
    """`directives=requires(BULK)` on a field or a type."""
    return [RequiresScopes(scopes=list(scopes))]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: `id` is what the audit trail and the rate limits record."""

    id: str
    scopes: frozenset[str]
    # False for a request that presented no credential.
    authenticated: bool = False

    def lacks(self, scopes: Iterable[str]) -> list[str]:
        return [scope for scope in scopes if scope not in self.scopes]


# A request without a credential in open mode: anything goes (README: Authentication and access).
ANONYMOUS = Caller("anonymous", frozenset(SCOPES))
# Code running in-process (the CLI, tests): not a network caller, never checked against a key.
INTERNAL = Caller("internal", frozenset(SCOPES))


@dataclass(frozen=True, slots=True)
class Need:
    """One scope an operation needs, and the first field (`Type.field`) that needs it."""

    scope: str
    coordinate: str


class ScopeRules:
    """The schema's `@requiresScopes`, read once into `(type, field) -> scopes`."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.by_type: dict[str, tuple[str, ...]] = {}
        self.by_field: dict[tuple[str, str], tuple[str, ...]] = {}
        for name, graphql_type in schema.type_map.items():
            if not isinstance(graphql_type, GraphQLObjectType):
                continue
            definition = (graphql_type.extensions or {}).get(DEFINITION)
            own = _scopes_of(getattr(definition, "directives", ()))
            if own:
                self.by_type[name] = own
            for field_name, field in graphql_type.fields.items():
                strawberry_field = (field.extensions or {}).get(DEFINITION)
                scopes = _scopes_of(getattr(strawberry_field, "directives", ()))
                if scopes:
                    self.by_field[(name, field_name)] = scopes

    def of(self, type_name: str, field_name: str) -> tuple[str, ...]:
        return self.by_type.get(type_name, ()) + self.by_field.get((type_name, field_name), ())

    def needs(self, document: DocumentNode) -> dict[str | None, tuple[Need, ...]]:
        """The scopes each operation of `document` needs (keyed like `operationName`)."""
        if not self.by_type and not self.by_field:
            return {}
        result: dict[str | None, tuple[Need, ...]] = {}
        for name, alone in separate_operations(document).items():
            result[name or None] = self._needs_of(alone)
        return result

    def _needs_of(self, document: DocumentNode) -> tuple[Need, ...]:
        type_info = TypeInfo(self.schema)
        found: dict[str, str] = {}
        rules = self

        class Collect(Visitor):
            def enter_field(self, node: FieldNode, *_: Any) -> None:
                parent = type_info.get_parent_type()
                if parent is None:
                    return
                for scope in rules.of(parent.name, node.name.value):
                    found.setdefault(scope, f"{parent.name}.{node.name.value}")

        visit(document, TypeInfoVisitor(type_info, Collect()))
        return tuple(Need(scope, coordinate) for scope, coordinate in found.items())


def _scopes_of(directives: Iterable[object]) -> tuple[str, ...]:
    return tuple(
        scope
        for directive in directives
        if isinstance(directive, RequiresScopes)
        for scope in directive.scopes
    )


def how_to_get(caller: Caller) -> str:
    """The remedy a refusal names: another token from the identity provider, or another key."""
    if caller.id.startswith("jwt:"):
        return (
            "Use a token whose scopes claim includes it (BATCHERY_JWT_SCOPES_CLAIM), from the "
            "identity provider"
        )
    return "Use a key created with it (batchery keys create --scopes ...)"


def refusal(caller: Caller, needs: Iterable[Need]) -> GraphQLError | None:
    """None when `caller` may run an operation with these needs; else the error it gets."""
    missing = [need for need in needs if need.scope not in caller.scopes]
    if not missing:
        return None
    scopes = [need.scope for need in missing]
    where = ", ".join(f"{need.coordinate} needs {need.scope!r}" for need in missing)
    if caller.authenticated:
        code = "FORBIDDEN"
        message = (
            f"This operation needs the scope{'s' if len(scopes) > 1 else ''} "
            f"{', '.join(map(repr, scopes))}, which {caller.id} does not have ({where}). "
            f"{how_to_get(caller)}."
        )
    else:
        code = "UNAUTHENTICATED"
        message = (
            f"This operation needs a credential with the scope{'s' if len(scopes) > 1 else ''} "
            f"{', '.join(map(repr, scopes))} ({where}): send Authorization: Bearer <key>."
        )
    extensions: Mapping[str, Any] = {
        "code": code,
        "missingScopes": scopes,
        "fields": [need.coordinate for need in missing],
    }
    return GraphQLError(message, extensions=dict(extensions))
