"""The durable store: round trips through three readers, journals, recovery, reruns across runs."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import duckdb
import pandas
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from docrouter.errors import ConfigError
from docrouter.results import Annotation, Result
from docrouter.run.ledger import answers_of, stored_parses
from docrouter.store.store import ANNOTATIONS_SCHEMA, RESULTS_SCHEMA, Store, read_annotations, read_results

PROMPT = "p" * 64


def make_result(n: int, run_id: str = "run-a", **changes: object) -> Result:
    result = Result(
        run_id=run_id,
        doc_id=f"{n:064x}",
        path=f"inbox/doc-{n}.pdf",
        source_root="/archive",
        size_bytes=1000 + n,
        mime_type="application/pdf",
        kind="pdf",
        pages=3,
        engine="pdf-text",
        engine_reason="good text layer on every page",
        model="openai/gpt-4o-mini",
        prompt_sha256=PROMPT,
        status="ok",
        error_type=None,
        error_message=None,
        attempts=1,
        est_cost_usd=0.002,
        cost_usd=0.0015,
        prompt_tokens=900,
        completion_tokens=120,
        generation_id=f"gen-{n}",
        content=f"summary of document {n}\nsecond line",
        finish_reason="stop",
        started_at="2025-03-01T10:00:00.125+00:00",
        finished_at=f"2025-03-01T10:00:{n % 60:02d}.500+00:00",
    )
    return dataclasses.replace(result, **changes)


def make_annotation(n: int, file_hash: str, created_at: str, run_id: str = "run-a") -> Annotation:
    return Annotation(
        doc_id=f"{n:064x}",
        file_hash=file_hash,
        name=f"doc-{n}.pdf",
        engine="mistral-ocr",
        content=f'[{{"type": "text", "text": "page text from {run_id}"}}]',
        run_id=run_id,
        created_at=created_at,
    )


def failed(n: int, run_id: str = "run-a") -> Result:
    return make_result(
        n,
        run_id,
        status="failed",
        pages=None,
        engine=None,
        engine_reason=None,
        error_type="encrypted",
        error_message="needs a user password",
        cost_usd=0.0,
        prompt_tokens=0,
        completion_tokens=0,
        generation_id=None,
        content=None,
        finish_reason=None,
    )


def visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith((".", "_")))


def test_rows_read_back_identical_with_exact_types_in_pandas_pyarrow_and_duckdb(tmp_path: Path) -> None:
    rows = [make_result(1), failed(2)]
    with Store(tmp_path, "run-a") as store:
        store.record(rows[0], [make_annotation(1, "h1", "2025-03-01T10:00:00Z")])
        store.record(rows[1])

    table = pads.dataset(tmp_path / "results", format="parquet").to_table()
    assert table.schema.equals(RESULTS_SCHEMA)
    assert pads.dataset(tmp_path / "annotations", format="parquet").to_table().schema.equals(ANNOTATIONS_SCHEMA)
    assert str(RESULTS_SCHEMA.field("finished_at").type) == "timestamp[us, tz=UTC]"

    frame = pandas.read_parquet(tmp_path / "results").sort_values("doc_id")
    assert frame["finished_at"].dtype == "datetime64[us, UTC]"
    assert frame["cost_usd"].dtype == "float64"
    assert frame["prompt_tokens"].dtype == "int64"
    assert frame["pages"].isna().tolist() == [False, True]

    duck = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path}/results/*.parquet') ORDER BY doc_id")
    types = dict(zip(duck.columns, (str(t) for t in duck.types), strict=True))
    assert types["started_at"] == "TIMESTAMP WITH TIME ZONE"
    assert (types["size_bytes"], types["cost_usd"], types["status"]) == ("BIGINT", "DOUBLE", "VARCHAR")
    assert duck.fetchall()[1][duck.columns.index("error_type")] == "encrypted"

    assert answers_of(tmp_path, [rows[0].doc_id], rows[0].model, PROMPT) == {rows[0].doc_id: rows[0]}


def test_read_results_has_nullable_int_columns_and_an_empty_frame_when_nothing_is_stored(tmp_path: Path) -> None:
    empty = read_results(tmp_path / "missing")
    assert empty.empty
    assert list(empty.columns) == RESULTS_SCHEMA.names
    with Store(tmp_path, "run-a") as store:
        store.record(failed(1))
    frame = read_results(tmp_path)
    assert frame["pages"].dtype == "Int64"
    assert frame["pages"].isna().all()
    assert read_annotations(tmp_path).columns.tolist() == ANNOTATIONS_SCHEMA.names


def test_readers_see_only_whole_parts_while_a_run_is_writing(tmp_path: Path) -> None:
    store = Store(tmp_path, "run-a", flush_every=3)
    for n in range(5):
        store.record(make_result(n))
    (tmp_path / "results" / ".part-run-a-00000099.parquet.1234.tmp").write_bytes(b"PAR1 half a file")

    assert visible_files(tmp_path / "results") == ["part-run-a-00000000.parquet"]
    assert len(pandas.read_parquet(tmp_path / "results")) == 3
    assert pads.dataset(tmp_path / "results", format="parquet").count_rows() == 3
    query = f"SELECT count(*) FROM read_parquet('{tmp_path}/results/*.parquet')"
    assert duckdb.sql(query).fetchall() == [(3,)]
    assert len(read_results(tmp_path)) == 5  # our reader adds the live journal tail
    assert read_results(tmp_path, columns=["doc_id", "status"]).shape == (5, 2)
    store.close()
    assert len(pandas.read_parquet(tmp_path / "results")) == 5


def test_parts_are_named_after_the_journal_lines_they_cover_and_the_journal_goes_on_close(tmp_path: Path) -> None:
    store = Store(tmp_path, "run-a", flush_every=3)
    for n in range(7):
        store.record(make_result(n), [make_annotation(n, f"h{n}", "2025-03-01T10:00:00Z")])
    assert visible_files(tmp_path / "results") == ["part-run-a-00000000.parquet", "part-run-a-00000003.parquet"]
    assert sorted(p.name for p in (tmp_path / "_journal").iterdir()) == ["run-a-00000006.jsonl", "run-a.lock"]
    store.close()
    assert visible_files(tmp_path / "annotations") == [f"part-run-a-{n:08d}.parquet" for n in (0, 3, 6)]
    assert list((tmp_path / "_journal").iterdir()) == []


def test_flush_seconds_compacts_on_the_next_record_after_the_interval(tmp_path: Path) -> None:
    now = [0.0]
    store = Store(tmp_path, "run-a", flush_seconds=5.0, clock=lambda: now[0])
    store.record(make_result(1))
    assert visible_files(tmp_path / "results") == []
    now[0] = 5.0
    store.record(make_result(2))
    assert visible_files(tmp_path / "results") == ["part-run-a-00000000.parquet"]
    store.close()


def test_done_keys_span_runs_and_count_only_ok_rows(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        store.record(make_result(1))
        store.record(failed(2))
        assert store.done_keys() == {(f"{1:064x}", "openai/gpt-4o-mini", PROMPT)}
    with Store(tmp_path, "run-b") as store:
        assert store.done_keys() == {(f"{1:064x}", "openai/gpt-4o-mini", PROMPT)}
        store.record(make_result(2, "run-b"))
    with Store(tmp_path, "run-c") as store:
        assert {key[0] for key in store.done_keys()} == {f"{1:064x}", f"{2:064x}"}
        assert answers_of(tmp_path, [f"{2:064x}"], "openai/gpt-4o-mini", PROMPT) == {
            f"{2:064x}": make_result(2, "run-b")
        }
        assert answers_of(tmp_path, [f"{2:064x}"], "openai/gpt-4o-mini", "other prompt") == {}


def test_answers_of_gives_the_latest_ok_row_and_never_a_failed_one(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        store.record(make_result(1, finished_at="2025-03-01T10:00:01.000+00:00", content="old"))
        store.record(failed(3))
        assert answers_of(tmp_path, [f"{3:064x}"], "openai/gpt-4o-mini", PROMPT) == {}
    with Store(tmp_path, "run-b") as store:
        store.record(make_result(1, "run-b", finished_at="2025-03-02T10:00:01.000+00:00", content="new"))
        live = answers_of(tmp_path, [f"{1:064x}"], "openai/gpt-4o-mini", PROMPT)  # from the journal tail
        store.flush()
        found = answers_of(tmp_path, [f"{1:064x}"], "openai/gpt-4o-mini", PROMPT)  # from the parts
    assert live == found and found[f"{1:064x}"].content == "new"


def test_stored_parses_are_the_latest_annotation_per_file_hash_across_runs(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        store.record(make_result(1), [make_annotation(1, "h1", "2025-03-01T10:00:00Z")])
        store.record(make_result(2), [make_annotation(2, "h9", "2025-03-01T10:00:00Z")])
    with Store(tmp_path, "run-b") as store:
        newer = make_annotation(1, "h1", "2025-03-05T10:00:00.000+00:00", run_id="run-b")
        other = make_annotation(1, "h2", "2025-03-04T10:00:00.000+00:00", run_id="run-b")
        store.record(make_result(1, "run-b"), [newer, other])
        wanted = [f"{1:064x}", f"{2:064x}", f"{7:064x}"]
        assert stored_parses(tmp_path, wanted)[f"{1:064x}"] == (other, newer)  # from the journal tail
        store.flush()
        parses = stored_parses(tmp_path, wanted)  # from the parts
    assert parses[f"{1:064x}"] == (other, newer)
    assert [a.file_hash for a in parses[f"{2:064x}"]] == ["h9"]
    assert f"{7:064x}" not in parses


def test_a_path_under_a_regular_file_is_an_unwritable_dir(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory")
    with pytest.raises(ConfigError, match=r"cannot write to .*plain-file/out: Not a directory"):
        Store(tmp_path / "plain-file" / "out", "run-a")


def test_the_same_run_id_cannot_write_twice_at_once(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a"), pytest.raises(ConfigError, match="run run-a is already writing there"):
        Store(tmp_path, "run-a")


def test_a_reused_run_id_adds_parts_instead_of_replacing_them(tmp_path: Path) -> None:
    for first in (0, 10):
        with Store(tmp_path, "run-a") as store:
            store.record(make_result(first))
            store.record(make_result(first + 1))
    assert sorted(read_results(tmp_path)["doc_id"]) == [f"{n:064x}" for n in (0, 1, 10, 11)]


def test_a_live_runs_journal_is_left_alone_but_counted_by_another_writer(tmp_path: Path) -> None:
    live = Store(tmp_path, "run-a", flush_every=100)
    live.record(make_result(1))
    with Store(tmp_path, "run-b") as other:
        assert (f"{1:064x}", "openai/gpt-4o-mini", PROMPT) in other.done_keys()
        other.record(make_result(2, "run-b"))
    assert (tmp_path / "_journal" / "run-a-00000000.jsonl").exists()
    live.record(make_result(3))
    live.close()
    assert sorted(read_results(tmp_path)["doc_id"]) == [f"{n:064x}" for n in (1, 2, 3)]


def test_a_wrong_type_is_refused_before_it_reaches_the_journal(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            store.record(make_result(1, pages="three"))
        store.record(make_result(2))
    assert read_results(tmp_path)["doc_id"].tolist() == [f"{2:064x}"]


def test_an_answer_with_a_lone_surrogate_is_stored_with_a_replacement_character(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a") as store:
        store.record(make_result(1, content="broken \ud800 escape"))
    assert read_results(tmp_path)["content"].tolist() == ["broken ? escape"]


@pytest.mark.slow  # seconds of CPU
def test_records_from_several_threads_are_each_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a", flush_every=7) as store:

        def write(base: int) -> None:
            for n in range(base, base + 40):
                store.record(make_result(n), [make_annotation(n, "h", "2025-03-01T10:00:00Z")])

        threads = [threading.Thread(target=write, args=(base,)) for base in (0, 100, 200)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    stored = read_results(tmp_path)
    assert len(stored) == 120 and stored["doc_id"].is_unique
    assert len(read_annotations(tmp_path)) == 120
    for part in (tmp_path / "results").glob("*.parquet"):
        assert pq.read_table(part).schema.equals(RESULTS_SCHEMA)


def test_a_run_without_annotations_still_leaves_a_readable_empty_annotations_dataset(tmp_path: Path) -> None:
    with Store(tmp_path, "run-a", flush_every=2) as store:
        for n in range(5):
            store.record(make_result(n))
    assert visible_files(tmp_path / "annotations") == ["part-run-a-00000000.parquet"]  # one empty part, not more
    query = f"SELECT count(*) FROM read_parquet('{tmp_path}/annotations/*.parquet')"
    assert duckdb.sql(query).fetchall() == [(0,)]
    frame = pandas.read_parquet(tmp_path / "annotations")
    assert frame.empty and frame.columns.tolist() == ANNOTATIONS_SCHEMA.names
    assert pq.read_schema(tmp_path / "annotations" / "part-run-a-00000000.parquet").names == ANNOTATIONS_SCHEMA.names


def test_truncated_ok_rows_are_not_done_and_folders_without_the_new_columns_still_read(tmp_path: Path) -> None:
    from docrouter.store.datasets import to_table, write_part

    old_schema = pa.schema([f for f in RESULTS_SCHEMA if f.name not in ("reasoning_tokens", "truncated")])
    old_row = {k: v for k, v in dataclasses.asdict(make_result(1, "run-old")).items() if k in old_schema.names}
    (tmp_path / "results").mkdir()
    write_part(tmp_path / "results", "part-run-old-00000000.parquet", to_table([old_row], old_schema))
    with Store(tmp_path, "run-a") as store:
        assert store.done_keys() == {(f"{1:064x}", "openai/gpt-4o-mini", PROMPT)}  # an older ok row is done
        store.record(make_result(2, truncated=True, finish_reason="length", reasoning_tokens=900))
        assert {key[0] for key in store.done_keys()} == {f"{1:064x}"}  # a cut answer is answered again
    with Store(tmp_path, "run-b") as store:
        assert {key[0] for key in store.done_keys()} == {f"{1:064x}"}
    frame = read_results(tmp_path).set_index("run_id")
    assert pandas.isna(frame.loc["run-old", "truncated"]) and pandas.isna(frame.loc["run-old", "reasoning_tokens"])
    assert (bool(frame.loc["run-a", "truncated"]), int(frame.loc["run-a", "reasoning_tokens"])) == (True, 900)
