"""Runs over URL sources (issue 19): a loopback file server, the emulator fetching URL parts, real Parquet."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import samples
from docrouter.emulator import Emulator, RequestRecord
from docrouter_commands.cli import main
from file_server import Files, Hit, serving
from pipeline import results, run_flow, scan_pdf

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

SECRET = "X-Amz-Signature=SECRETSIG0123"
IMAGE_A, IMAGE_B, IMAGE_SIGNED = samples.png(300, 200), samples.png(301, 200), samples.png(302, 200)
LETTER = samples.text_pdf(2, text="A letter that lives behind a URL. " * 30)
SCAN = scan_pdf("A scanned letter behind a URL.")
MODEL = "mistralai/mistral-small-3.2-24b-instruct"  # images but no file input: scans go to mistral-ocr


@dataclass
class UrlRuns:
    base: str
    listed: Path
    out: Path
    summaries: list[dict[str, Any]]
    frames: list[pd.DataFrame]  # results of each run alone
    chats: list[list[RequestRecord]]  # chat requests of each run
    hits: list[list[Hit]]  # file server requests of each run


def _files() -> Files:
    return Files(
        bodies={
            "/a.png": IMAGE_A,
            "/b.png": IMAGE_B,
            "/signed.png": IMAGE_SIGNED,
            "/letter.pdf": LETTER,
            "/scan.pdf": SCAN,
            "/notes.png": b"meeting notes, plain text\n",
            "/slow.png": IMAGE_A,
        },
        content_types={"/scan.pdf": "text/plain", "/notes.png": "image/png", "/a.png": "image/png"},
        slow_s={"/slow.png": 4.0},  # over DOCROUTER_URL_TIMEOUT_S
    )


def _list(folder: Path, base: str) -> Path:
    listed = folder / "scans.txt"
    names = ["a.png", "b.png", f"signed.png?{SECRET}", "letter.pdf", "scan.pdf", "notes.png", "missing.pdf"]
    names.append("slow.png")
    listed.write_text("# public scans\n" + "".join(f"{base}/{name}\n" for name in names))
    return listed


def _local(folder: Path) -> Path:
    folder.mkdir()
    (folder / "local.pdf").write_bytes(scan_pdf("A scanned letter on the local disk."))
    (folder / "local.png").write_bytes(samples.png(120, 90))
    return folder


@pytest.fixture(scope="module")
def url_runs(prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> UrlRuns:
    tmp = tmp_path_factory.mktemp("url-runs")
    files, local, out = _files(), _local(tmp / "local"), tmp / "out"
    with serving(files) as base, Emulator() as emu, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENROUTER_API_KEY", emu.api_key)
        env.setenv("DOCROUTER_URL_TIMEOUT_S", "1")
        listed = _list(tmp, base)
        summaries, frames, chats, hits = [], [], [], []
        for step in ("first", "rerun", "changed", "never"):
            if step == "changed":
                files.bodies["/b.png"] = samples.png(303, 200)
            target = tmp / "out-never" if step == "never" else out
            send_urls = "never" if step == "never" else "auto"
            records, served = len(emu.records), len(files.hits)
            summary = run_flow(
                sources=[str(local)], urls=[str(listed)], out=str(target), base_url=emu.base_url,
                send_urls=send_urls, url_cache_size=0, model=MODEL,
            )  # fmt: skip
            summaries.append(summary)
            frame = results(target)
            frames.append(frame[frame.run_id == summary["run_id"]].set_index("path"))
            chats.append([r for r in emu.records[records:] if r.path.endswith("/chat/completions")])
            hits.append(files.hits_since(served))
    return UrlRuns(base, listed, out, summaries, frames, chats, hits)


def test_a_mixed_run_answers_folders_and_urls_with_one_row_each(url_runs: UrlRuns) -> None:
    first, base = url_runs.frames[0], url_runs.base
    outcomes = {path: (r.status, r.error_type, r.sent_as) for path, r in first.iterrows()}
    none = None
    assert {k: tuple(None if pd.isna(v) else v for v in t) for k, t in outcomes.items()} == {
        "local.pdf": ("ok", none, "upload"),
        "local.png": ("ok", none, "upload"),
        f"{base}/a.png": ("ok", none, "url"),
        f"{base}/b.png": ("ok", none, "url"),
        f"{base}/signed.png?REDACTED": ("ok", none, "url"),
        f"{base}/letter.pdf": ("ok", none, "upload"),  # a text layer: local-text, sent as text
        f"{base}/scan.pdf": ("ok", none, "url"),  # served as text/plain; a scan: mistral-ocr by URL
        f"{base}/notes.png": ("skipped", "unsupported", none),  # served as image/png; the bytes are text
        f"{base}/missing.pdf": ("failed", "not_found", none),
        f"{base}/slow.png": ("failed", "fetch", none),  # timed out: transient, fetched again by the next run
    }
    assert first.loc[f"{base}/a.png", "doc_id"] == hashlib.sha256(IMAGE_A).hexdigest()
    assert first.loc[f"{base}/signed.png?REDACTED", "source_url"] == f"{base}/signed.png?REDACTED"
    assert first.loc[f"{base}/a.png", "source_root"] == str(url_runs.listed)
    assert pd.isna(first.loc["local.png", "source_url"])


def test_urls_are_sent_by_url_without_base64_and_pdfs_routed_like_local_ones(url_runs: UrlRuns) -> None:
    first, chats = url_runs.frames[0], url_runs.chats[0]
    by_url = [r for r in chats if r.url_parts]
    assert sorted(u.rsplit("/", 1)[-1] for r in by_url for u in r.url_parts) == sorted(
        ["a.png", "b.png", f"signed.png?{SECRET}", "scan.pdf"]
    )
    assert all(r.data_urls == 0 and r.body_bytes < 2_000 for r in by_url)
    assert first.loc[f"{url_runs.base}/scan.pdf", "engine"] == first.loc["local.pdf", "engine"] == "mistral-ocr"
    assert first.loc[f"{url_runs.base}/letter.pdf", "engine"] == "local-text"
    assert all(h.authorization is None for hits in url_runs.hits for h in hits)


def test_a_rerun_with_unchanged_etags_gets_only_304s_and_sends_nothing(url_runs: UrlRuns) -> None:
    statuses = sorted((h.path.rsplit("/", 1)[-1], h.status) for h in url_runs.hits[1] if h.path != "/slow.png")
    assert statuses == sorted(
        [("a.png", 304), ("b.png", 304), (f"signed.png?{SECRET}", 304), ("letter.pdf", 304), ("scan.pdf", 304),
         ("notes.png", 304), ("missing.pdf", 404)]
    )  # fmt: skip
    assert url_runs.chats[1] == [] and url_runs.summaries[1]["by_status"] == {"failed": 1}
    assert url_runs.frames[1].error_type.to_dict() == {f"{url_runs.base}/slow.png": "fetch"}
    assert url_runs.summaries[1]["url_fetches"]["fetched_bytes"] == 0
    assert url_runs.summaries[1]["known_failures"] == 2  # the 404 and the text file: terminal, left alone


def test_changed_url_content_is_a_new_document(url_runs: UrlRuns) -> None:
    changed = url_runs.frames[2]
    assert sorted(changed.index) == [f"{url_runs.base}/b.png", f"{url_runs.base}/slow.png"]
    assert changed.loc[f"{url_runs.base}/b.png"].doc_id == hashlib.sha256(samples.png(303, 200)).hexdigest()
    assert len(url_runs.chats[2]) == 1


def test_send_urls_never_uploads_every_document(url_runs: UrlRuns) -> None:
    never = url_runs.frames[3]
    assert set(never[never.status == "ok"].sent_as) == {"upload"}
    assert all(not r.url_parts for r in url_runs.chats[3])
    assert sum(r.data_urls for r in url_runs.chats[3]) == 6  # four images, two scans; local-text sends text


def _leaks(out: Path) -> list[str]:
    found = [str(p) for p in out.rglob("*") if p.is_file() and b"SECRETSIG" in p.read_bytes()]
    for dataset in ("results", "annotations"):
        if (out / dataset).is_dir():
            frame = pd.read_parquet(out / dataset)
            found += [f"{dataset}.{c}" for c in frame.columns if frame[c].astype(str).str.contains("SECRETSIG").any()]
    return found


def test_a_signed_urls_query_string_appears_in_no_dataset_or_file(url_runs: UrlRuns) -> None:
    assert _leaks(url_runs.out) == [] and _leaks(url_runs.out.parent / "out-never") == []


def test_the_command_line_takes_urls_and_shows_no_signature(tmp_path: Path) -> None:
    files = _files()
    with serving(files) as base:
        command = [
            sys.executable,
            "-m",
            "docrouter_commands.cli",
            "run",
            f"{base}/signed.png?{SECRET}",
            f"{base}/letter.pdf",
        ]
        env = {**os.environ, "DOCROUTER_URL_TIMEOUT_S": "5"}
        done = subprocess.run(
            [*command, "--out", str(tmp_path / "out"), "--offline"],
            capture_output=True, text=True, timeout=240, env=env, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SECRETSIG" not in done.stdout + done.stderr
    assert _leaks(tmp_path / "out") == []
    frame = results(tmp_path / "out")
    assert set(frame.source_root) == {"urls"} and set(frame.status) == {"ok"}


def test_plan_fetches_urls_to_inspect_them_and_says_how_many_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(_files()) as base:
        assert main(["plan", f"{base}/letter.pdf", f"{base}/a.png?{SECRET}", "--offline"]) == 0
    printed = capsys.readouterr().out
    assert f"fetched 2 ({len(LETTER) + len(IMAGE_A):,} bytes)" in printed
    assert "local-text" in printed and "SECRETSIG" not in printed
