"""The file layer: safe names, no overwrites, the .part file, and a real full disk."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peer_agent.downloads import (
    FALLBACK_NAME,
    MAX_NAME_BYTES,
    DiskFull,
    HashMismatch,
    PartFile,
    _RESERVED,
    _SEPARATORS,
    safe_name,
    unique_path,
)
from signaling.schema import TransferOffer

LONG = "a" * 300 + ".jpg"
LONG_WIDE = "é" * 200 + ".png"  # 2 bytes each in UTF-8: a char cap alone would pass 400 bytes


@pytest.mark.parametrize(
    "offered,expected",
    [
        ("photo.jpg", "photo.jpg"),
        ("../x", "x"),
        ("../../../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\x", "x"),
        ("C:\\Windows\\System32\\drivers\\etc\\hosts", "hosts"),
        ("\\\\server\\share\\x", "x"),
        ("C:x", "C_x"),  # a drive-relative name: ':' is never kept
        ("report.txt:hidden_stream", "report.txt_hidden_stream"),
        ("a\x00b.txt", "ab.txt"),
        ("bell\x07\x1b[31m.txt", "bell[31m.txt"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("NUL.tar.gz", "_NUL.tar.gz"),
        ("Lpt9", "_Lpt9"),
        ("COM1 .txt", "_COM1.txt"),
        ("COM¹", "_COM¹"),
        ("CONSOLE.txt", "CONSOLE.txt"),  # only exact device names are reserved
        ("name...", "name"),
        ("name. . ", "name"),
        (".bashrc", "bashrc"),
        ("...hidden", "hidden"),
        ("..", FALLBACK_NAME),
        ("", FALLBACK_NAME),
        ("   ", FALLBACK_NAME),
        ("/", FALLBACK_NAME),
        ("\x00\x01", FALLBACK_NAME),
        ("..\u2215..\u2215etc\u2215passwd", "passwd"),  # DIVISION SLASH
        ("..\uff0fetc\uff0fpasswd", "passwd"),  # FULLWIDTH SOLIDUS
        ("a\u2044b", "b"),  # FRACTION SLASH
        ("..\uff3cwin.ini", "win.ini"),  # FULLWIDTH REVERSE SOLIDUS
        ("e\u0301.txt", "\u00e9.txt"),  # NFC
        ("\u202egpj.exe", "gpj.exe"),  # RIGHT-TO-LEFT OVERRIDE would show "exe.jpg"
        ('a<b>c"d|e?f*.txt', "a_b_c_d_e_f_.txt"),
    ],
)
def test_safe_name_list_from_the_issue(offered, expected):
    assert safe_name(offered) == expected


@pytest.mark.parametrize("offered,ext", [(LONG, ".jpg"), (LONG_WIDE, ".png"), ("x" * 1000, "")])
def test_long_names_are_cut_by_utf8_bytes_keeping_the_extension(offered, ext):
    name = safe_name(offered)
    assert len(name.encode()) <= MAX_NAME_BYTES and name.endswith(ext) and len(name) > 100
    assert name.encode().decode() == name  # never cut inside a character


def _stem_is_reserved(name: str) -> bool:
    return name.split(".")[0].rstrip(" ").upper() in _RESERVED


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(max_size=400),
                 st.lists(st.sampled_from(["..", ".", "/", "\\", "CON", "nul", "∕", "／", " ", "\x00", "é", "e\u0301",
                                           "a", ".txt", ":", "\u202e", "\u200d", "LPT1", "COM¹"]),
                          max_size=40).map("".join)))
def test_safe_name_properties(offered):
    name = safe_name(offered)
    assert name and len(name.encode()) <= MAX_NAME_BYTES
    assert not set(name) & set(_SEPARATORS)
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in name)
    assert not name.startswith((".", " ")) and not name.endswith((".", " "))
    assert not _stem_is_reserved(name)
    assert name not in {".", ".."}
    assert safe_name(name) == name  # already safe stays as it is


def test_unique_path_never_reuses_a_taken_name(tmp_path):
    names = []
    for _ in range(4):
        path = unique_path(tmp_path, "photo.jpg")
        path.write_bytes(b"x")
        names.append(path.name)
    assert names == ["photo.jpg", "photo (1).jpg", "photo (2).jpg", "photo (3).jpg"]
    assert unique_path(tmp_path, "README").name == "README"
    (tmp_path / "README").write_text("x")
    assert unique_path(tmp_path, "README").name == "README (1)"


def test_unique_path_counts_parts_and_dangling_symlinks_as_taken(tmp_path):
    (tmp_path / "a.txt.part").write_bytes(b"")
    assert unique_path(tmp_path, "a.txt").name == "a (1).txt"
    os.symlink(tmp_path / "nowhere", tmp_path / "b.txt")
    assert unique_path(tmp_path, "b.txt").name == "b (1).txt"


def test_unique_path_suffix_stays_under_name_max(tmp_path):
    name = safe_name(LONG)
    (tmp_path / name).write_bytes(b"")
    other = unique_path(tmp_path, name)
    assert other.name.endswith(" (1).jpg") and len((other.name + ".part").encode()) <= MAX_NAME_BYTES


def _offer(data: bytes, name: str = "photo.jpg", tid: str = "00112233aabbccdd") -> TransferOffer:
    return TransferOffer(id=tid, name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_part_file_is_private_inside_the_folder_and_commits_to_a_free_name(tmp_path):
    data = os.urandom(100_000)
    (tmp_path / "evil").write_bytes(b"keep me")
    part = PartFile.open(tmp_path, _offer(data, name="../../evil"))
    assert part.path.parent == tmp_path and part.path.name == "evil (1).part"
    assert stat.S_IMODE(part.path.stat().st_mode) == 0o600
    # Someone takes the final name while the transfer runs: commit must not replace it.
    (tmp_path / "evil (1)").write_bytes(b"me too")
    part.write(0, data[:60_000])
    part.write(60_000, data[60_000:])
    final = part.commit()
    assert final.name == "evil (2)" and final.read_bytes() == data
    assert (tmp_path / "evil").read_bytes() == b"keep me" and (tmp_path / "evil (1)").read_bytes() == b"me too"
    assert _visible(tmp_path) == ["evil", "evil (1)", "evil (2)"]
    assert list((tmp_path / ".peerbeam").iterdir()) == []


def test_part_file_refuses_to_commit_wrong_bytes(tmp_path):
    data = b"the real file"
    part = PartFile.open(tmp_path, _offer(data))
    part.write(0, b"the fake file")
    with pytest.raises(HashMismatch):
        part.commit()
    assert _visible(tmp_path) == []


def test_resume_finds_the_part_and_rehashes_its_prefix(tmp_path):
    data = os.urandom(300_000)
    offer = _offer(data)
    first = PartFile.open(tmp_path, offer)
    first.write(0, data[:123_456])
    first.close()
    assert _visible(tmp_path) == ["photo.jpg.part"]
    again = PartFile.open(tmp_path, offer)
    assert again.offset == 123_456 and again.path == first.path
    assert again.prefix_digest().hexdigest() == hashlib.sha256(data[:123_456]).hexdigest()
    again.write(123_456, data[123_456:])
    assert again.commit().read_bytes() == data


def test_resume_needs_the_same_id_and_hash(tmp_path):
    data = os.urandom(1000)
    first = PartFile.open(tmp_path, _offer(data))
    first.write(0, data[:500])
    first.close()
    other = PartFile.open(tmp_path, _offer(data, tid="ffffffffffffffff"))  # another transfer of the same name
    assert other.offset == 0 and other.path.name == "photo (1).jpg.part"
    changed = PartFile.open(tmp_path, _offer(data[:999]))  # same id, different file: start over
    assert changed.offset == 0 and changed.path.stat().st_size == 0  # the stale prefix is gone


def test_disk_full_removes_the_partial_file(tiny_disk):
    data = os.urandom(2 * 1024 * 1024)
    part = PartFile.open(tiny_disk, _offer(data))
    with pytest.raises(DiskFull) as info:
        for offset in range(0, len(data), 65_000):
            part.write(offset, data[offset:offset + 65_000])
    assert info.value.__cause__.errno == errno.ENOSPC
    assert info.value.code == "disk_full"
    assert _visible(tiny_disk) == [] and list((tiny_disk / ".peerbeam").iterdir()) == []
