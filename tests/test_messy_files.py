"""Messy archives: a damaged, changed or vanished file is its own row, the run goes on, nothing is paid twice.

Whole runs against the emulator over loopback; rows read back from Parquet; money counted on the emulator's
request log. Changes "between discovery and send" happen between the run's real stages (runs.discover,
runs.inspect, runs.call, the functions the flow's tasks wrap), not by patching anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import samples
from docrouter.emulator import Emulator
from docrouter.results import Result
from docrouter.run import session as runs
from docrouter.run.config import RunConfig
from pipeline import results, run_flow, write_corpus

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(seed=13) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        yield emu


def paid_per_file(emu: Emulator) -> Counter[str]:
    """Billed answers per file hash (a file sent in a request that was answered and billed)."""
    counts: Counter[str] = Counter()
    for record in emu.records:
        if record.path.endswith("/chat/completions") and record.status == 200 and record.billed_usd > 0:
            counts.update(record.file_hashes)
    return counts


def chat_requests(emu: Emulator) -> int:
    return sum(record.path.endswith("/chat/completions") for record in emu.records)


def by_name(df: pd.DataFrame) -> dict[str, tuple[str, str | None, str | None]]:
    """path -> (status, error_type, error_message), asserting one row per file."""
    assert df.path.is_unique, df.path.tolist()
    return {r.path: (r.status, r.error_type, r.error_message) for r in df.itertuples()}


def test_damaged_images_are_rows_and_the_run_goes_on(tmp_path: Path, emulator: Emulator, prefect_api_url: str) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, text=2, pngs=2)
    (docs / "cut.jpg").write_bytes(samples.truncated(samples.jpeg(4000, 3000)))
    (docs / "cut.png").write_bytes(samples.truncated(samples.png(4000, 3000)))
    (docs / "claims_100mp.png").write_bytes(samples.header_only_png(10_000, 10_000))
    (docs / "bomb_400mp.png").write_bytes(samples.header_only_png(20_000, 20_000))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "docrouter_commands.cli",
            "run",
            docs,
            "--out",
            tmp_path / "out",
            "--base-url",
            emulator.base_url,
        ],
        env={**os.environ, "PREFECT_API_URL": prefect_api_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = by_name(results(tmp_path / "out"))
    assert len(rows) == 8
    for name in ("cut.jpg", "cut.png", "claims_100mp.png"):
        assert rows[name][:2] == ("failed", "corrupt"), rows[name]
    assert rows["bomb_400mp.png"][:2] == ("failed", "too_large"), rows["bomb_400mp.png"]
    assert [r[0] for name, r in rows.items() if name.startswith(("text_", "image_"))] == ["ok"] * 4
    assert chat_requests(emulator) == 4  # the damaged files cost nothing
    assert set(paid_per_file(emulator).values()) == {1}


@pytest.mark.usefixtures("prefect_api_url")
def test_three_169_megapixel_pngs_come_out_downscaled(tmp_path: Path, emulator: Emulator) -> None:
    docs = tmp_path / "posters"
    docs.mkdir()
    for i in range(3):  # three different pictures (a copy would be sent once)
        (docs / f"poster_{i}.png").write_bytes(samples.giant_png(13_000, 13_000, shade=0x40 * (i + 1)))

    run_flow(sources=[str(docs)], out=str(tmp_path / "out"), base_url=emulator.base_url)

    df = results(tmp_path / "out")
    assert sorted(df.path) == ["poster_0.png", "poster_1.png", "poster_2.png"]
    assert set(df.status) == {"ok"}, df[["path", "error_type", "error_message"]]
    assert df.engine_reason.str.contains("downscaled 13000x13000 -> 2048x2048").all()
    assert set(paid_per_file(emulator).values()) == {1}


def stage_config(source: Path, out: Path, emu: Emulator) -> RunConfig:
    return RunConfig(sources=(str(source),), out=str(out), base_url=emu.base_url, concurrency=4)


async def run_stages(
    config: RunConfig,
    *,
    after_discovery: Callable[[], None] = lambda: None,
    after_inspection: Callable[[], None] = lambda: None,
    calls: int = 1,
) -> list[list[Result]]:
    """A run through its real stages, with a change to the files between two of them; `calls` > 1 runs the
    call stage again over the same batch, as a retried task would."""
    documents = runs.discover(config)
    after_discovery()
    async with runs.open_session(config, api_key=os.environ["OPENROUTER_API_KEY"]) as session:
        selection = runs.select(documents, session.store.done_keys(), config)
        pairs = runs.inspect(selection.fresh, session.inspector, session.jobs.named_files)
        after_inspection()
        jobs = runs.route(session, pairs)
        return [await runs.call(session, jobs, set()) for _ in range(calls)]


def change_files(docs: Path, outside: Path, *, fifo: bool) -> None:
    """Delete one file, rewrite two, swap one for a symlink to a file outside the source root, one for a
    folder and one for a named pipe (after inspection: the inspection workers open by path, and a pipe
    would hold one for its whole time limit)."""
    (docs / "image_000.png").unlink()
    (docs / "image_001.png").write_bytes(samples.png(240, 240))
    (docs / "image_002.png").unlink()
    (docs / "image_002.png").symlink_to(outside)
    (docs / "image_004.png").unlink()
    (docs / "image_004.png").mkdir()
    (docs / "image_005.png").unlink()
    if fifo:
        os.mkfifo(docs / "image_005.png")
    with (docs / "image_006.png").open("r+b") as same_size:  # one byte flipped in place: only the hash tells
        same_size.seek(-1, os.SEEK_END)
        last = same_size.read(1)
        same_size.seek(-1, os.SEEK_END)
        same_size.write(bytes([last[0] ^ 0xFF]))
    (docs / "text_000.pdf").write_bytes(samples.text_pdf(1, text="Replaced. " * 40))


@pytest.mark.parametrize("moment", ["after_discovery", "after_inspection"])
def test_files_changed_after_discovery_are_changed_rows_never_paid(
    tmp_path: Path, emulator: Emulator, moment: str
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, text=2, pngs=7)
    outside = tmp_path / "secret.png"
    outside.write_bytes(samples.png(300, 300))
    config = stage_config(docs, tmp_path / "out", emulator)

    fifo = moment == "after_inspection"
    asyncio.run(run_stages(config, **{moment: lambda: change_files(docs, outside, fifo=fifo)}))

    rows = by_name(results(tmp_path / "out"))
    assert len(rows) == 9
    for name, what in [
        ("image_000.png", "deleted"),
        ("image_001.png", "modified"),
        ("image_002.png", "symlink"),
        ("image_004.png", "folder"),
        ("image_005.png", "named pipe" if fifo else "deleted"),
        ("image_006.png", "different bytes"),
        ("text_000.pdf", "modified"),
    ]:
        assert rows[name][:2] == ("failed", "changed") and what in str(rows[name][2]), (name, rows[name])
    assert rows["image_003.png"][0] == rows["text_001.pdf"][0] == "ok"
    assert chat_requests(emulator) == 2  # only the unchanged files were sent
    paid = paid_per_file(emulator)
    assert set(paid.values()) == {1}
    assert samples_hash(outside) not in paid  # the outside file's bytes never left

    # The next run picks up the new bytes as new documents (the symlink out of the root is not followed).
    [second] = asyncio.run(run_stages(config))
    assert {"image_001.png", "text_000.pdf"} <= {r.path for r in second if r.status == "ok"}
    assert chat_requests(emulator) == 2 + sum(r.attempts > 0 for r in second) == 5
    assert set(paid_per_file(emulator).values()) == {1}


def samples_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_retried_call_stage_sends_nothing_twice(tmp_path: Path, emulator: Emulator) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, text=5, pngs=5)
    (docs / "cut.jpg").write_bytes(samples.truncated(samples.jpeg(4000, 3000)))

    first, again = asyncio.run(run_stages(stage_config(docs, tmp_path / "out", emulator), calls=2))

    assert len(first) == 11 and again == []
    rows = by_name(results(tmp_path / "out"))
    assert len(rows) == 11 and rows["cut.jpg"][:2] == ("failed", "corrupt")
    assert chat_requests(emulator) == 10
    assert set(paid_per_file(emulator).values()) == {1}


def test_the_call_stage_has_no_task_retries() -> None:
    from docrouter_tasks import stages

    assert stages.call.retries == 0  # a retry would re-enter paid work; per-document failures are rows
