"""Reading records from CSV and JSON Lines: every record counted (unreadable ones too), so a
job's checkpoint can skip exactly the records it committed."""

from __future__ import annotations

import pytest

from app.bulk import BAKERIES, CAKE_ORDERS
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


def test_a_csv_number_is_ascii_digits_or_left_as_text_for_the_engine_to_refuse(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("bakeryId,currentTotal\n1, 12 \n1,1_000\n1,+5\n1,\u0661\n1,-3\n")
    totals = [row.data["currentTotal"] for row in read_rows(path, "csv", CAKE_ORDERS)]
    assert totals == [12, "1_000", "+5", "\u0661", -3]


def test_the_format_comes_from_the_name_unless_chosen(tmp_path):
    assert format_of(tmp_path / "a.NDJSON") == "jsonl"
    assert format_of(tmp_path / "a.txt", "csv") == "csv"
    with pytest.raises(SourceError, match="--format"):
        format_of(tmp_path / "a.txt")


def test_a_jsonl_line_over_the_limit_is_a_bad_record_and_the_rest_is_read(tmp_path):
    path = tmp_path / "in.jsonl"
    with path.open("wb") as out:
        out.write(b'{"name": "a"}\n{"name": "')
        out.write(b"z" * (8 * 1024 * 1024))  # 8 MiB in one line, no newline for a while
        out.write(b'"}\n{"name": "c"}\n')
    rows = list(read_rows(path, "jsonl", BAKERIES, max_line_bytes=4096))
    assert [(r.line, r.data) for r in rows] == [(1, {"name": "a"}), (2, None), (3, {"name": "c"})]
    assert rows[1].problem is not None and "longer than 4096 bytes" in rows[1].problem
    # Nothing of the long line is kept, so nothing of it reaches the failed file either.
    assert (rows[1].raw, rows[1].text) == (None, None)
    assert count_rows(path, "jsonl", BAKERIES, max_line_bytes=4096) == 3


def test_a_csv_cell_over_the_limit_is_a_bad_record_and_the_rest_is_read(tmp_path):
    path = tmp_path / "in.csv"
    with path.open("wb") as out:
        out.write(b'name,region\nRye,CENTRAL\n"')
        out.write(b"w" * (8 * 1024 * 1024))
        out.write(b'",NORTH\nSpelt,SOUTH\n')
    rows = list(read_rows(path, "csv", BAKERIES, max_line_bytes=4096))
    assert [(r.line, r.data) for r in rows] == [
        (2, {"name": "Rye", "region": "CENTRAL"}),
        (3, None),
        (4, {"name": "Spelt", "region": "SOUTH"}),
    ]
    assert rows[1].problem is not None and "BATCHERY_JOBS_MAX_LINE_BYTES" in rows[1].problem


def test_a_quoted_csv_record_spanning_lines_over_the_limit_is_a_bad_record(tmp_path):
    path = tmp_path / "in.csv"
    many_short_lines = b"\n".join([b"v" * 100] * 100)  # 10 KB in one quoted cell
    path.write_bytes(b'name,region\n"' + many_short_lines + b'",NORTH\nSpelt,SOUTH\n')
    rows = list(read_rows(path, "csv", BAKERIES, max_line_bytes=4096))
    # Skipped to the end of the record (its closing quote), not cut into rows of their own.
    assert [(r.line, r.data) for r in rows] == [
        (2, None), (102, {"name": "Spelt", "region": "SOUTH"}),
    ]  # fmt: skip
    assert rows[0].problem is not None and "longer than 4096 bytes" in rows[0].problem


def test_a_cell_over_csvs_own_field_limit_but_under_ours_is_read(tmp_path):
    path = tmp_path / "in.csv"
    big = "q" * (200 * 1024)  # over the csv module's default 128 KiB field limit
    path.write_text(f"name,region\n{big},NORTH\n")
    (row,) = read_rows(path, "csv", BAKERIES, max_line_bytes=1024 * 1024)
    assert row.data == {"name": big, "region": "NORTH"}
