"""Reading a discovered file for sending: the discovered bytes, or Changed saying what happened."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from docrouter.call.reading import check_unchanged, read_verified, verified_file
from docrouter.discover.documents import discover_documents
from docrouter.errors import Changed


def discovered(source: Path, name: str):
    [doc] = [d for d in discover_documents([source]) if d.rel_path == name]
    return doc


def test_unchanged_file_reads_its_discovered_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 first")
    doc = discovered(tmp_path, "a.pdf")
    data = read_verified(doc)
    assert data == b"%PDF-1.4 first" and hashlib.sha256(data).hexdigest() == doc.doc_id
    with verified_file(doc) as file:
        assert file.read() == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.unlink(), "deleted"),
        (lambda p: p.write_bytes(b"%PDF-1.4 second, longer"), "-> 23 bytes"),
        (lambda p: p.write_bytes(b"%PDF-1.4 fir5t"), "same size, different bytes"),
    ],
)
def test_a_changed_file_raises_changed_saying_what(tmp_path: Path, change, message: str) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.4 first")
    doc = discovered(tmp_path, "a.pdf")
    change(path)
    with pytest.raises(Changed, match=message):
        read_verified(doc)


def test_a_change_while_the_handle_is_in_use_is_caught_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"%PDF-1.4 first")
    doc = discovered(tmp_path, "a.pdf")
    with pytest.raises(Changed, match="while it was being read"), verified_file(doc):
        path.write_bytes(b"%PDF-1.4 first and more")


def test_symlinks_are_followed_only_as_discovery_follows_them(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside.pdf"
    root.mkdir()
    outside.write_bytes(b"%PDF-1.4 first")
    (root / "real.pdf").write_bytes(b"%PDF-1.4 first")
    (root / "inside.pdf").symlink_to(root / "real.pdf")
    inside = discovered(root, "inside.pdf")
    assert read_verified(inside) == b"%PDF-1.4 first"  # a link inside the root, as discovered

    (root / "swapped.pdf").write_bytes(b"%PDF-1.4 first")
    swapped = discovered(root, "swapped.pdf")
    (root / "swapped.pdf").unlink()
    (root / "swapped.pdf").symlink_to(outside)  # the very same bytes, but from outside the root
    with pytest.raises(Changed, match="symlink to .*outside the source root"):
        check_unchanged(swapped)

    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "named.pdf").symlink_to(outside)  # a file the user named as a source: anywhere
    [named] = discover_documents([tmp_path / "links" / "named.pdf"])
    assert read_verified(named, {named.path}) == b"%PDF-1.4 first"
    with pytest.raises(Changed, match="outside the source root"):
        read_verified(named)  # the same link met inside a folder source is one discovery would not follow
