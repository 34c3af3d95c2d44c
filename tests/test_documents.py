"""Discovery: which files are found, how they are typed (by bytes), hashed, and what odd files become."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from docrouter import samples
from docrouter.documents import (
    EMPTY_MIME,
    OCTET_STREAM,
    UNREADABLE_MIME,
    Document,
    discover_documents,
    sniff_mime,
)
from docrouter.errors import ConfigError

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


def test_symlink_loops_end(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"a/x.pdf": PDF})
    (root / "a" / "up").symlink_to(root)  # folder loop back to the root
    (root / "a" / "self").symlink_to(root / "a" / "self")  # link to itself
    docs = {d.rel_path: d for d in discover_documents([root])}
    assert sorted(docs) == ["a/self", "a/x.pdf"]
    assert (docs["a/self"].mime_type, docs["a/self"].doc_id, docs["a/self"].kind) == (UNREADABLE_MIME, "", None)


def test_dangling_symlink_and_fifo_are_unreadable_not_fatal(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"ok.pdf": PDF})
    (root / "gone.pdf").symlink_to(root / "missing.pdf")
    os.mkfifo(root / "pipe.pdf")  # opening it would block forever
    docs = {d.rel_path: d for d in discover_documents([root])}
    for name in ("gone.pdf", "pipe.pdf"):
        assert (docs[name].mime_type, docs[name].doc_id, docs[name].kind) == (UNREADABLE_MIME, "", None)
    assert docs["ok.pdf"].kind == "pdf"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"locked.pdf": PDF})
    (root / "locked.pdf").chmod(0)
    (doc,) = discover_documents([root])
    assert (doc.mime_type, doc.doc_id, doc.kind, doc.size_bytes) == (UNREADABLE_MIME, "", None, len(PDF))


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
