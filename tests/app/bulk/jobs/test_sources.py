"""Reading records from CSV and JSON Lines: every record counted (unreadable ones too), so a
job's checkpoint can skip exactly the records it committed."""

from __future__ import annotations

import pytest

from app.bulk import BAKERIES
from app.bulk.jobs.sources import SourceError, count_rows, format_of, read_rows


def test_skipping_records_resumes_at_the_next_one_whatever_they_hold(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"name": "a"}\n\nnot json\n[1]\n{"name": "e"}\n')
    rows = list(read_rows(path, "jsonl", BAKERIES))
    assert [(r.line, r.data is not None) for r in rows] == [
        (1, True), (3, False), (4, False), (5, True),
    ]  # fmt: skip
    assert count_rows(path, "jsonl", BAKERIES) == 4
    assert [r.line for r in read_rows(path, "jsonl", BAKERIES, skip=2)] == [4, 5]
    assert rows[1].text == "not json"


def test_a_csv_may_name_an_id_column_only_when_the_reader_allows_it(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,name\n7,Rye\n")
    with pytest.raises(SourceError, match="unknown column 'id'"):
        list(read_rows(path, "csv", BAKERIES))
    (row,) = read_rows(path, "csv", BAKERIES, extra_columns=("id",))
    assert row.data == {"id": "7", "name": "Rye"}


def test_the_format_comes_from_the_name_unless_chosen(tmp_path):
    assert format_of(tmp_path / "a.NDJSON") == "jsonl"
    assert format_of(tmp_path / "a.txt", "csv") == "csv"
    with pytest.raises(SourceError, match="--format"):
        format_of(tmp_path / "a.txt")
