"""Recording the writes of an HTTP request in the audit trail (app/db/audit.py).

GraphQL: one entry per mutation operation that ran (not those refused before running), naming its
root fields, written in one statement when the request's operations are done. REST: one entry per
write call (`POST`, `PATCH`, `DELETE`, also inside `POST /api/batch`), with its status. A failure
to write the trail is logged and counted, never turned into a failed write: the write happened.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import HTTPConnection

from app.db.audit import AuditEntry, record
from app.http.access import caller_of, request_id_of

logger = logging.getLogger("batchery.audit")


def root_fields(document: DocumentNode, operation_name: str | None) -> list[str]:
    """The root field names an operation selects (through fragments), as written in the schema."""
    names: list[str] = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is not None and (
            definition.name is None or definition.name.value != operation_name
        ):
            continue
        _collect(definition.selection_set.selections, document, names, set())
    return names


def _collect(
    selections: Sequence[SelectionNode], document: DocumentNode, names: list[str], seen: set[str]
) -> None:
    for selection in selections:
        if isinstance(selection, FieldNode):
            if selection.name.value not in names:
                names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set.selections, document, names, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            for definition in document.definitions:
                if (
                    isinstance(definition, FragmentDefinitionNode)
                    and definition.name.value == selection.name.value
                ):
                    _collect(definition.selection_set.selections, document, names, seen)


def entry(
    conn: HTTPConnection, transport: str, action: str, outcome: str, detail: str = ""
) -> AuditEntry:
    return AuditEntry(request_id_of(conn), caller_of(conn).id, transport, action, outcome, detail)


async def write(conn: HTTPConnection, engine: AsyncEngine, entries: Sequence[AuditEntry]) -> None:
    if not entries:
        return
    try:
        await record(engine, entries)
    except Exception:
        logger.exception(
            "could not write %d audit entries of request %s", len(entries), request_id_of(conn)
        )
