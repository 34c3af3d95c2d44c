"""Discovery: which files are found, how they are typed (by bytes), hashed, and what odd files become."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import samples
from docrouter.call.reading import read_verified
from docrouter.call.rows import RunColumns, Unsent, unsent_row
from docrouter.discover.documents import (
    EMPTY_MIME,
    OCTET_STREAM,
    Document,
    byteless_id,
    discover_documents,
    sniff_mime,
)
from docrouter.discover.names import escape_name, stored_file, unescape_name
from docrouter.errors import ConfigError
from docrouter.run.session import named_files

PDF = samples.text_pdf(1)
PNG = samples.png(20, 10)


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (PDF[:64], "application/pdf"),
        (b"\r\n" * 100 + b"%PDF-1.7\n", "application/pdf"),  # junk before the header, as real readers allow
        (b"x" * 1020 + b"%PDF-1.4", OCTET_STREAM),  # header past the first 1024 bytes
        (b"%\xe2\xe3\xcf\xd3\n1 0 obj \n<<\n/Type /Pages", "application/pdf"),  # header line lost, objects intact
        (b"1 0 obj\n<< >>", "application/pdf"),
        (b"hello\n1 0 obj\n<< >>", OCTET_STREAM),  # text before the object: not a PDF
        (PNG[:16], "image/png"),
        (samples.jpeg(20, 10)[:16], "image/jpeg"),
        (samples.webp(20, 10)[:16], "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", OCTET_STREAM),
        (b"GIF87a\x01\x00", "image/gif"),
        (samples.gif(20, 10)[:16], "image/gif"),
        (samples.tiff(20, 10)[:16], "image/tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"hello world", OCTET_STREAM),
        (b"", OCTET_STREAM),
    ],
)
def test_sniff_mime_reads_magic_bytes(head: bytes, mime: str) -> None:
    assert sniff_mime(head) == mime


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _rels(docs: list[Document]) -> list[str]:
    return [d.rel_path for d in docs]


TREE = {
    "b.pdf": PDF,
    "a/z.png": PNG,
    "a/b/deep.pdf": PDF,
    "notes.txt": b"plain text",
    ".hidden.pdf": PDF,
    ".git/config.pdf": PDF,
    "drafts/old.pdf": PDF,
}


@pytest.mark.parametrize(
    ("include", "exclude", "recursive", "expected"),
    [
        ((), (), True, ["a/b/deep.pdf", "a/z.png", "b.pdf", "drafts/old.pdf", "notes.txt"]),
        ((), (), False, ["b.pdf", "notes.txt"]),
        (("*.pdf",), (), True, ["a/b/deep.pdf", "b.pdf", "drafts/old.pdf"]),
        (("**/*.pdf",), (), True, ["a/b/deep.pdf", "b.pdf", "drafts/old.pdf"]),
        (("a/*",), (), True, ["a/b/deep.pdf", "a/z.png"]),
        (("z.png",), (), True, ["a/z.png"]),
        ((), ("drafts",), True, ["a/b/deep.pdf", "a/z.png", "b.pdf", "notes.txt"]),
        ((), ("drafts/*", "*.txt"), True, ["a/b/deep.pdf", "a/z.png", "b.pdf"]),
        (("*.pdf",), ("deep.pdf",), True, ["b.pdf", "drafts/old.pdf"]),
        (("*.PDF",), (), True, []),  # case-sensitive
    ],
)
def test_include_exclude_recursive_and_hidden(tmp_path: Path, include, exclude, recursive, expected) -> None:
    root = _tree(tmp_path, TREE)
    docs = list(discover_documents([root], include=include, exclude=exclude, recursive=recursive))
    assert _rels(docs) == expected


def test_documents_are_typed_by_bytes_and_hashed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"lying.pdf": PNG, "real.png": PDF, "notes.txt": b"plain", "scan.tif": samples.tiff(8, 8)})
    docs = {d.rel_path: d for d in discover_documents([root])}
    assert (docs["lying.pdf"].mime_type, docs["lying.pdf"].kind) == ("image/png", "image")
    assert (docs["real.png"].mime_type, docs["real.png"].kind) == ("application/pdf", "pdf")
    assert (docs["notes.txt"].mime_type, docs["notes.txt"].kind) == (OCTET_STREAM, None)
    assert (docs["scan.tif"].mime_type, docs["scan.tif"].kind) == ("image/tiff", None)
    assert docs["real.png"].doc_id == hashlib.sha256(PDF).hexdigest()
    assert docs["real.png"].size_bytes == len(PDF)
    assert docs["real.png"].source_root == Path(os.path.realpath(root)).as_posix()
    assert Path(docs["real.png"].path).read_bytes() == PDF


def test_same_bytes_under_two_names_share_a_doc_id(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"one.pdf": PDF, "copies/two.pdf": PDF})
    ids = [d.doc_id for d in discover_documents([root])]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_hash_of_a_file_larger_than_one_read_chunk(tmp_path: Path) -> None:
    data = PDF + os.urandom(3 * 1024 * 1024 + 17)
    root = _tree(tmp_path, {"big.pdf": data})
    (doc,) = discover_documents([root])
    assert doc.doc_id == hashlib.sha256(data).hexdigest()
    assert doc.kind == "pdf"


def test_zero_byte_file_is_reported_empty(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"zero.pdf": b""})
    (doc,) = discover_documents([root])
    assert (doc.size_bytes, doc.mime_type, doc.kind) == (0, EMPTY_MIME, None)
    assert doc.doc_id == hashlib.sha256(b"").hexdigest()


def test_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "outside", {"secret.pdf": PDF, "dir/also.pdf": PDF})
    root = _tree(tmp_path / "root", {"in.pdf": PDF})
    (root / "link.pdf").symlink_to(outside / "secret.pdf")
    (root / "linkdir").symlink_to(outside / "dir")
    assert _rels(list(discover_documents([root]))) == ["in.pdf"]


def test_symlink_inside_the_root_is_followed(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"real/a.pdf": PDF})
    (tmp_path / "alias.pdf").symlink_to(tmp_path / "real" / "a.pdf")
    docs = list(discover_documents([root]))
    assert _rels(docs) == ["alias.pdf", "real/a.pdf"]
    assert docs[0].doc_id == docs[1].doc_id


def test_symlink_loops_end_and_a_link_to_itself_is_an_unreadable_entry(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a/x.pdf": PDF})
    (root / "a" / "up").symlink_to(root)  # folder loop back to the root
    (root / "a" / "self").symlink_to(root / "a" / "self")  # link to itself
    docs = {d.rel_path: d for d in discover_documents([root])}
    assert sorted(docs) == ["a/self", "a/x.pdf"]
    loop = docs["a/self"]
    assert (loop.kind, loop.mime_type, loop.error_type) == (None, "inode/symlink", "unreadable")
    assert "symlink loop" in (loop.error_message or "")
    assert loop.doc_id == _byteless_id_of(root, "a/self")


def test_dangling_symlink_is_unreadable_and_names_its_target(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"ok.pdf": PDF})
    (root / "gone.pdf").symlink_to(root / "missing.pdf")
    docs = {d.rel_path: d for d in discover_documents([root])}
    assert (docs["gone.pdf"].kind, docs["gone.pdf"].error_type) == (None, "unreadable")
    assert "dangling symlink" in (docs["gone.pdf"].error_message or "")
    assert "missing.pdf" in (docs["gone.pdf"].error_message or "")
    assert docs["ok.pdf"].kind == "pdf"


def test_fifo_is_unsupported_and_never_opened(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    os.mkfifo(root / "pipe.pdf")  # opening it for reading would block forever: the test would hang
    (doc,) = discover_documents([root])
    assert (doc.kind, doc.mime_type, doc.error_type, doc.size_bytes) == (None, "inode/fifo", "unsupported", 0)
    assert "named pipe" in (doc.error_message or "")
    assert doc.doc_id == _byteless_id_of(root, "pipe.pdf")


def test_socket_and_device_are_unsupported_with_what_they_are(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(root / "s.sock"))
        made_device = _make_char_device(root / "null.pdf")
        docs = {d.rel_path: d for d in discover_documents([root])}
    assert (docs["s.sock"].mime_type, docs["s.sock"].error_type) == ("inode/socket", "unsupported")
    assert "socket" in (docs["s.sock"].error_message or "")
    if made_device:
        assert (docs["null.pdf"].mime_type, docs["null.pdf"].error_type) == ("inode/chardevice", "unsupported")
        assert "character device" in (docs["null.pdf"].error_message or "")


def _make_char_device(path: Path) -> bool:
    """A character device node like /dev/null (needs CAP_MKNOD; False where the container forbids it)."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        return False
    return True


def _byteless_id_of(root: Path, rel: str) -> str:
    info = os.lstat(root / rel)
    return byteless_id(escape_name(os.path.realpath(root)), rel, info.st_size, info.st_mtime_ns)


def test_an_entry_without_bytes_gets_a_new_identity_when_it_changes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {})
    os.mkfifo(root / "pipe")
    (before,) = discover_documents([root])
    (again,) = discover_documents([root])
    os.utime(root / "pipe", ns=(1, 1_000_000_000))
    (after,) = discover_documents([root])
    assert before.doc_id == again.doc_id != after.doc_id


def _documents(root: Path) -> list[dict[str, Any]]:
    return [dataclasses.asdict(d) for d in discover_documents([root])]


def _as_nobody(root: Path) -> dict[str, Any]:
    """`_documents(root)` in a forked child that has become user nobody (uid 65534), as {"ok": ...} or
    {"error": ...}: root reads anything, so permission checks need another user (the interpreter lives under
    /root, which nobody cannot exec, hence a fork rather than a subprocess)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root; a normal user is checked by the ConfigError test")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                payload: dict[str, Any] = {"ok": _documents(root)}
            except Exception as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(write, "w") as pipe:
                json.dump(payload, pipe)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(text)


def _discover_as_nobody(root: Path) -> dict[str, Document]:
    answer = _as_nobody(root)
    assert "ok" in answer, answer
    return {fields["rel_path"]: Document(**fields) for fields in answer["ok"]}


def _row(doc: Document) -> tuple[str, str | None, str | None]:
    """(status, error_type, error_message) of the row a run writes for this document."""
    row = unsent_row(Unsent(doc, None, None), RunColumns(run_id="r", model="m", prompt_sha256="p"))
    assert row is not None
    return row.status, row.error_type, row.error_message


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder user nobody can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="docrouter-perm-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755)
    shutil.rmtree(folder)


@pytest.mark.slow  # forks a child process (as nobody)
def test_file_without_read_permission_is_failed_unreadable_and_known_by_its_stat(shared_tmp: Path) -> None:
    root = _tree(shared_tmp, {"locked.pdf": PDF, "open.pdf": samples.text_pdf(2)})
    (root / "locked.pdf").chmod(0o600)
    (root / "open.pdf").chmod(0o644)
    docs = _discover_as_nobody(root)
    status, error_type, message = _row(docs["locked.pdf"])
    assert (status, error_type) == ("failed", "unreadable") and "permission denied" in (message or "")
    assert docs["locked.pdf"].size_bytes == len(PDF)
    assert docs["open.pdf"].kind == "pdf"
    # No bytes to hash: the same path, size and mtime are the same document; a touched file is a new one.
    assert _discover_as_nobody(root)["locked.pdf"].doc_id == docs["locked.pdf"].doc_id
    os.utime(root / "locked.pdf", ns=(1, 2_000_000_000))
    assert _discover_as_nobody(root)["locked.pdf"].doc_id != docs["locked.pdf"].doc_id


@pytest.mark.slow  # forks a child process (as nobody)
def test_unreadable_folder_is_a_row_not_a_silent_gap(shared_tmp: Path) -> None:
    root = _tree(shared_tmp, {"fine.pdf": PDF, "private/inner.pdf": PDF})
    for path in (root / "fine.pdf", root / "private" / "inner.pdf"):
        path.chmod(0o644)
    (root / "private").chmod(0o700)
    docs = _discover_as_nobody(root)
    assert sorted(docs) == ["fine.pdf", "private"]
    status, error_type, message = _row(docs["private"])
    assert (status, error_type) == ("failed", "unreadable") and "not discovered" in (message or "")
    assert docs["private"].mime_type == "inode/directory"


@pytest.mark.slow  # forks a child process (as nobody)
def test_unreadable_source_is_a_config_error(shared_tmp: Path) -> None:
    root = _tree(shared_tmp / "src", {"a.pdf": PDF})
    root.chmod(0o700)
    if os.geteuid() != 0:
        with pytest.raises(ConfigError, match="cannot read source"):
            list(discover_documents([root]))
        return
    error = _as_nobody(root)["error"]
    assert error.startswith("ConfigError: cannot read source") and "ermission denied" in error


def test_non_utf8_names_are_stored_distinct_and_reversibly(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    names = [b"caf\xe9.pdf", b"caf\xc3\xa9.pdf", b"caf%E9.pdf", b"100%.pdf", b"\xff\xfe.pdf"]
    for i, name in enumerate(names):
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            f.write(samples.text_pdf(1, text=f"doc {i}"))
    docs = list(discover_documents([root]))
    stored = sorted(d.rel_path for d in docs)
    assert stored == sorted(["caf%E9.pdf", "café.pdf", "caf%25E9.pdf", "100%25.pdf", "%FF%FE.pdf"])
    for doc in docs:
        assert doc.rel_path.encode("utf-8")  # storable as UTF-8, no lone surrogates
        assert stored_file(doc.source_root, doc.rel_path) == Path(doc.path)
        assert stored_file(doc.source_root, doc.rel_path).read_bytes() == Path(doc.path).read_bytes()


@pytest.mark.parametrize("name", ["plain.pdf", "a%b", "%", "%%41", "caf\udce9", "\udcff%FF", "ünï/cödé"])
def test_unescape_inverts_escape(name: str) -> None:
    assert unescape_name(escape_name(name)) == name


def test_output_folder_inside_a_source_is_not_discovered(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a.pdf": PDF, "out/results/part-1.parquet": b"PAR1", "sub/b.pdf": PDF})
    (root / "alias").symlink_to(root / "out")
    assert _rels(list(discover_documents([root], skip=[root / "out"]))) == ["a.pdf", "sub/b.pdf"]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["root", "root"], [("root", "a.pdf"), ("root", "sub/b.pdf")]),
        (["root", "sub"], [("root", "a.pdf"), ("root", "sub/b.pdf")]),
        (["sub", "root"], [("sub", "b.pdf"), ("root", "a.pdf")]),
        (["file", "root"], [("sub", "b.pdf"), ("root", "a.pdf")]),
        (["root", "file"], [("root", "a.pdf"), ("root", "sub/b.pdf")]),
    ],
)
def test_overlapping_or_repeated_sources_give_one_document_per_file_under_the_first_source(
    tmp_path: Path, order: list[str], expected: list[tuple[str, str]]
) -> None:
    root = _tree(tmp_path / "root", {"a.pdf": PDF, "sub/b.pdf": PNG})
    given = {"root": root, "sub": root / "sub", "file": root / "sub" / "b.pdf"}
    docs = list(discover_documents([given[name] for name in order]))
    assert [(Path(d.source_root).name, d.rel_path) for d in docs] == expected


def test_a_source_can_be_a_single_file_even_a_hidden_one(tmp_path: Path) -> None:
    root = _tree(tmp_path, {".one.pdf": PDF, "other.pdf": PDF})
    (doc,) = discover_documents([root / ".one.pdf"])
    assert (doc.rel_path, doc.kind, doc.source_root) == (".one.pdf", "pdf", Path(os.path.realpath(root)).as_posix())


def test_several_sources_in_the_order_given(tmp_path: Path) -> None:
    first = _tree(tmp_path / "z", {"b.pdf": PDF})
    second = _tree(tmp_path / "a", {"a.png": PNG})
    docs = list(discover_documents([first, second]))
    assert [(Path(d.source_root).name, d.rel_path) for d in docs] == [("z", "b.pdf"), ("a", "a.png")]


def test_missing_source_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source not found"):
        list(discover_documents([tmp_path / "nope"]))


def test_a_link_inside_a_root_whose_name_is_escaped_is_still_read_as_inside(tmp_path: Path) -> None:
    root = _tree(tmp_path / "100% scans", {"real/a.pdf": PDF})
    (root / "alias.pdf").symlink_to(root / "real" / "a.pdf")
    docs = {d.rel_path: d for d in discover_documents([root])}
    assert docs["alias.pdf"].source_root.endswith("/100%25 scans")
    assert docs["alias.pdf"].root_path == os.path.realpath(root)
    assert read_verified(docs["alias.pdf"]) == PDF


def test_a_file_source_keeps_the_path_as_given_so_the_send_recognises_it(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a.pdf": PDF})
    (doc,) = discover_documents([root / "a.pdf", root])
    assert doc.path in named_files([str(root / "a.pdf")])
