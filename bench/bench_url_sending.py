"""Bytes uploaded to the API for a list of image URLs, sent by URL (--send-urls auto) and uploaded (never).

Serves N distinct PNGs from a loopback file server, runs the real CLI (a subprocess) twice against the
emulator (one instance in this process, so its request log is readable), each run into its own DIR, and
prints the request bytes the emulator received per mode, and how many bytes the file server sent.

    .venv/bin/python bench/bench_url_sending.py [--count 100] [--width 1024] [--height 768]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import samples  # noqa: E402
from docrouter.emulator import Emulator  # noqa: E402
from file_server import Files, serving  # noqa: E402  (the tests' loopback server)


def run(listed: Path, out: Path, emu: Emulator, mode: str) -> None:
    env = {**os.environ, "OPENROUTER_API_KEY": emu.api_key}
    command = [sys.executable, "-m", "docrouter_commands.cli", "run", "--urls", str(listed), "--out", str(out)]
    command += ["--base-url", emu.base_url, "--send-urls", mode, "--model", "openai/gpt-4o-mini"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=768)
    args = parser.parse_args()
    images = {f"/scan_{i:03d}.png": samples.png(args.width + i, args.height) for i in range(args.count)}
    files = Files(bodies=images)
    print(f"{args.count} PNGs, {sum(map(len, images.values())):,} bytes in all")
    with tempfile.TemporaryDirectory() as tmp, serving(files) as base, Emulator() as emu:
        listed = Path(tmp) / "images.txt"
        listed.write_text("".join(f"{base}{path}?sig=bench\n" for path in images))
        for mode in ("auto", "never"):
            before, served = len(emu.records), sum(h.body_bytes for h in files.hits)
            run(listed, Path(tmp) / mode, emu, mode)
            chats = [r for r in emu.records[before:] if r.path.endswith("/chat/completions")]
            uploaded = sum(r.body_bytes for r in chats)
            fetched = sum(h.body_bytes for h in files.hits) - served
            print(
                f"--send-urls {mode:5}: {len(chats)} requests, {uploaded:,} bytes uploaded to the API "
                f"({uploaded / max(1, len(chats)):,.0f} per request); file server sent {fetched:,} bytes"
            )


if __name__ == "__main__":
    main()
