"""`batchery import`: files in, rows in the database, failures in the report with line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.bulk import BAKERIES, CAKE_ORDERS
from app.cli import main
from app.cli_import import ImportJob, SourceError, count_rows, run_import
from app.db.reads import orders
from app.settings import Settings
from tests import dbstate

CSV = """bakeryId,writtenPhrase,currentTotal,status,externalId
1,Plain,10,PLACED,IM-1
2,"Two
lines",0,READY,IM-2
99,Unknown bakery,5,PLACED,IM-3
3,Negative,-4,PLACED,IM-4
3,Bad status,4,EATEN,IM-5
3,Too,many,cells,IM-6,extra

4,Last,,,IM-7
"""


class StepClock:
    """Each chunk "takes" `seconds`: the engine call reads the clock twice."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        if self.calls % 2 == 0:
            self.now += self.seconds
        return self.now


def report(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def keys_written(engine, prefix: str) -> list[str]:
    async with engine.connect() as conn:
        statement = select(orders.c.external_id).where(orders.c.external_id.like(f"{prefix}%"))
        return sorted((await conn.execute(statement)).scalars())


async def test_csv_import_writes_valid_rows_and_reports_the_others(engine, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(CSV)
    job = ImportJob(source, CAKE_ORDERS, min_chunk=2, max_chunk=3)
    seen: list[tuple[int, int]] = []
    result = await run_import(
        engine,
        Settings(),
        job,
        progress=lambda chunker: lambda done, total: seen.append((done, total)),
    )

    assert (result.total, result.written, result.committed) == (7, 3, True)
    assert await keys_written(engine, "IM-") == ["IM-1", "IM-2", "IM-7"]
    two = await dbstate.order_by_key(engine, "IM-2")
    assert (two.written_phrase, two.status.name) == ("Two\nlines", "READY")
    seven = await dbstate.order_by_key(engine, "IM-7")
    assert (seven.current_total, seven.status.name) == (0, "PLACED")

    lines = report(job.report_path)
    assert job.report_path == tmp_path / "orders.csv.errors.jsonl"
    assert [(entry["line"], [e["code"] for e in entry["errors"]]) for entry in lines] == [
        (5, ["REFERENCE_NOT_FOUND"]),
        (6, ["INVALID_VALUE"]),
        (7, ["INVALID_VALUE"]),
        (8, ["INVALID_VALUE"]),
    ]
    assert lines[1]["errors"][0]["field"] == "data.currentTotal"
    assert lines[1]["record"]["writtenPhrase"] == "Negative"
    assert "6 cells" in lines[3]["errors"][0]["message"]
    assert seen[-1] == (7, 7)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def test_a_duplicate_names_the_earlier_row_by_its_line_number(engine, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(
        "bakeryId,writtenPhrase,externalId\n1,First,DUP-1\n1,Other,DUP-2\n2,Again,DUP-1\n"
    )
    job = ImportJob(source, CAKE_ORDERS, min_chunk=10, max_chunk=10)
    result = await run_import(engine, Settings(), job)
    assert (result.written, len(result.failures)) == (2, 1)
    (entry,) = report(job.report_path)
    assert entry["line"] == 4
    assert entry["errors"][0]["code"] == "DUPLICATE"
    # The file's line, the report's numbering: not the record's index in its chunk.
    assert (
        entry["errors"][0]["message"] == "externalId 'DUP-1' appears earlier in the batch (line 2)"
    )
    assert await keys_written(engine, "DUP-") == ["DUP-1", "DUP-2"]


async def test_atomic_import_writes_nothing_when_a_row_fails(engine, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(CSV)
    before = await dbstate.snapshot(engine)
    job = ImportJob(source, CAKE_ORDERS, atomic=True, min_chunk=2, max_chunk=2)
    result = await run_import(engine, Settings(), job)
    assert (result.committed, result.written, len(result.failures)) == (False, 0, 4)
    assert [entry["line"] for entry in report(job.report_path)] == [5, 6, 7, 8]
    assert await dbstate.snapshot(engine) == before


async def test_atomic_import_of_good_rows_commits_all_of_them(engine, tmp_path):
    source = tmp_path / "orders.jsonl"
    rows = [
        {"bakeryId": 1 + i % 6, "writtenPhrase": f"J{i}", "externalId": f"JL-{i:02}"}
        for i in range(25)
    ]
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    job = ImportJob(source, CAKE_ORDERS, atomic=True, min_chunk=10, max_chunk=10)
    result = await run_import(engine, Settings(), job)
    assert (result.committed, result.written, result.failures) == (True, 25, [])
    assert result.chunk_sizes == [10, 10, 5]
    assert len(await keys_written(engine, "JL-")) == 25
    assert not job.report_path.exists()


async def test_jsonl_lines_that_cannot_be_read_are_reported(engine, tmp_path):
    source = tmp_path / "orders.jsonl"
    source.write_text(
        '{"bakeryId": 1, "writtenPhrase": "ok", "externalId": "JX-1"}\n\nnot json\n[1, 2]\n'
    )
    job = ImportJob(source, CAKE_ORDERS)
    result = await run_import(engine, Settings(), job)
    assert result.written == 1
    assert [(e["line"], e["errors"][0]["code"]) for e in report(job.report_path)] == [
        (3, "INVALID_VALUE"),
        (4, "INVALID_VALUE"),
    ]


async def test_chunks_grow_while_they_are_fast_and_shrink_when_slow(engine, tmp_path):
    source = tmp_path / "bakeries.csv"
    source.write_text("name,region\n" + "".join(f"Fast {i},CENTRAL\n" for i in range(150)))
    job = ImportJob(source, BAKERIES, target_seconds=1.0, min_chunk=10, max_chunk=200)
    result = await run_import(engine, Settings(), job, clock=StepClock(0.01))
    assert result.chunk_sizes == [10, 20, 40, 80]
    source.write_text("name,region\n" + "".join(f"Slow {i},CENTRAL\n" for i in range(100)))
    job = ImportJob(source, BAKERIES, target_seconds=1.0, min_chunk=10, max_chunk=200)
    result = await run_import(engine, Settings(), job, clock=StepClock(3.0))
    assert result.chunk_sizes == [10] * 10
    assert await dbstate.count(engine, "bakeries") == 6 + 250


async def test_a_database_rule_unknown_to_the_checks_is_found_row_by_row(engine, tmp_path):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE UNIQUE INDEX ix_test_bakery_name ON bakeries (name)"))
    existing = (await dbstate.bakery(engine, 1)).name
    source = tmp_path / "bakeries.csv"
    source.write_text(f'name,region\nNew A,CENTRAL\n"{existing}",CENTRAL\nNew B,CENTRAL\n')
    before = await dbstate.snapshot(engine)
    job = ImportJob(source, BAKERIES, atomic=True)
    result = await run_import(engine, Settings(), job)
    assert [(f.line, f.errors[0].code) for f in result.failures] == [(3, "DUPLICATE")]
    assert await dbstate.snapshot(engine) == before
    result = await run_import(engine, Settings(), ImportJob(source, BAKERIES))
    assert result.written == 2
    assert await dbstate.bakeries_named(engine, "New A", "New B") == ["New A", "New B"]


def test_unusable_files_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        count_rows(ImportJob(tmp_path / "missing.csv", CAKE_ORDERS))
    odd = tmp_path / "orders.txt"
    odd.write_text("x")
    with pytest.raises(SourceError, match="--format"):
        count_rows(ImportJob(odd, CAKE_ORDERS))
    bad = tmp_path / "orders.csv"
    bad.write_text("bakeryId,colour\n1,red\n")
    with pytest.raises(SourceError, match="unknown column 'colour'"):
        count_rows(ImportJob(bad, CAKE_ORDERS))


def test_the_cli_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCHERY_DATA_DIR", str(tmp_path / "data"))
    assert main(["seed", "--bakeries", "3", "--orders-per-bakery", "1"]) == 0
    good = tmp_path / "good.csv"
    good.write_text("bakeryId,writtenPhrase\n1,From the CLI\n2,Again\n")
    assert main(["import", str(good), "--entity", "cake-orders", "--no-progress"]) == 0
    assert "2 of 2 rows written" in capsys.readouterr().err

    mixed = tmp_path / "mixed.csv"
    mixed.write_text("bakeryId,writtenPhrase\n1,Fine\n7,No bakery\n")
    report_path = tmp_path / "failed.jsonl"
    code = main(
        ["import", str(mixed), "--entity", "cake-orders", "--atomic", "--report", str(report_path)]
    )
    assert code == 1
    assert "nothing imported" in capsys.readouterr().err
    assert [entry["line"] for entry in report(report_path)] == [3]

    assert main(["import", str(tmp_path / "none.csv"), "--entity", "bakeries"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["import", str(good), "--entity", "cake-orders", "--target-ms", "0"]) == 2
