"""A messy folder through the real flow (issue 13): every odd entry is one row saying what it is, read back
from Parquet; the output folder inside the source and repeated or overlapping sources add nothing."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import samples
from docrouter.call.payloads import RequestOptions
from docrouter.discover.names import stored_file
from docrouter.run.asking import build_question, find_document
from pipeline import results, run_flow

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

NON_UTF8 = b"re\xe7u.pdf"  # Latin-1 "reçu": not UTF-8

# path as stored -> (status, error_type, what the message says)
EXPECTED: dict[str, tuple[str, str | None, str]] = {
    "letter.pdf": ("ok", None, ""),
    "sub/photo.png": ("ok", None, ""),
    "re%E7u.pdf": ("ok", None, ""),
    "100%25 done.pdf": ("ok", None, ""),
    "pipe": ("skipped", "unsupported", "named pipe"),
    "server.sock": ("skipped", "unsupported", "socket"),
    "loop": ("failed", "unreadable", "symlink loop"),
    "dangling.pdf": ("failed", "unreadable", "dangling symlink"),
}


@dataclass(frozen=True)
class OddRun:
    source: Path
    out: Path
    summaries: list[dict[str, Any]]
    frames: list[pd.DataFrame]


@pytest.fixture(scope="module")
def odd(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OddRun]:
    source = tmp_path_factory.mktemp("odd")
    (source / "sub").mkdir()
    (source / "letter.pdf").write_bytes(samples.text_pdf(1, text="Invoice for the garden work. " * 20))
    (source / "sub" / "photo.png").write_bytes(samples.png(80, 50))
    with open(os.path.join(os.fsencode(source), NON_UTF8), "wb") as f:
        f.write(samples.text_pdf(1, text="Receipt in French. " * 20))
    (source / "100% done.pdf").write_bytes(samples.text_pdf(1, text="A finished report. " * 20))
    os.mkfifo(source / "pipe")
    (source / "loop").symlink_to(source / "loop")
    (source / "dangling.pdf").symlink_to(source / "nowhere.pdf")
    out = source / "out"  # inside the source: never discovered
    sources = [str(source), str(source / "sub"), str(source)]  # overlapping and repeated
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(source / "server.sock"))
        summaries, frames = [], []
        for _ in range(2):
            summaries.append(run_flow(sources=sources, out=str(out), offline=True))
            frames.append(results(out))
        yield OddRun(source, out, summaries, frames)


def test_every_entry_is_one_row_with_what_it_is(odd: OddRun) -> None:
    frame = odd.frames[0]
    assert frame.path.is_unique, frame.path.value_counts()
    assert {r.path: (r.status, None if pd.isna(r.error_type) else r.error_type) for r in frame.itertuples()} == {
        path: (status, error_type) for path, (status, error_type, _) in EXPECTED.items()
    }
    for row in frame.itertuples():
        message = "" if pd.isna(row.error_message) else row.error_message
        assert EXPECTED[row.path][2] in message, row


def test_overlapping_sources_keep_the_first_source_that_holds_the_file(odd: OddRun) -> None:
    roots = set(odd.frames[0].source_root)
    assert roots == {os.path.realpath(odd.source)}


def test_a_non_utf8_name_is_stored_escaped_and_leads_back_to_its_file(odd: OddRun) -> None:
    row = odd.frames[0].set_index("path").loc["re%E7u.pdf"]
    original = os.fsdecode(os.path.join(os.fsencode(odd.source), NON_UTF8))
    assert stored_file(row.source_root, "re%E7u.pdf") == Path(original)
    assert stored_file(row.source_root, "re%E7u.pdf").read_bytes() == Path(original).read_bytes()


def test_the_rerun_adds_no_row_and_never_reads_the_output_folder(odd: OddRun) -> None:
    assert len(odd.frames[1]) == len(odd.frames[0])
    second = odd.summaries[1]
    assert (second["already_done"], second["known_failures"], second["by_status"]) == (4, 4, {})


@pytest.mark.parametrize(
    ("asked", "stored", "text"),
    [("100% done.pdf", "100%25 done.pdf", "A finished report."), ("re%E7u.pdf", "re%E7u.pdf", "Receipt in French.")],
)
def test_ask_finds_an_escaped_name_and_reads_its_file(odd: OddRun, asked: str, stored: str, text: str) -> None:
    row = find_document(odd.out, asked)
    assert row["path"] == stored
    body = build_question(row, RequestOptions(model="m", prompt="q", max_tokens=10), ())
    assert text in json.dumps(body)
