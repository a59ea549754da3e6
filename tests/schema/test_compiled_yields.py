"""A new document's analysis for the compiled plans is CPU work on the event loop: it is done
when the document is prepared (the batch runner yields between new documents), not at its
first execution. Before, the operations of a batch of 100 new documents analysed them back to
back as the batch started: ~0.2 s in which no other request was served."""

from __future__ import annotations

from app.settings import Settings
from schema import schema
from schema.execution import Executor


def test_a_prepared_document_is_analysed_for_its_plans_before_it_runs():
    executor = Executor(schema, Settings(compiled_execution=True))
    prepared = executor.prepare("{ bakeries(first: 1) { id name } }")
    assert prepared.plans.document is not None and prepared.plans.variables == ()


def test_without_compiled_execution_nothing_is_analysed():
    executor = Executor(schema, Settings(compiled_execution=False))
    prepared = executor.prepare("{ bakeries(first: 1) { id name } }")
    assert prepared.plans.document is None
