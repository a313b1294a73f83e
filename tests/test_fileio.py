"""Atomic writes: whole new content or the old file, never a part; temp files never left behind."""

import os

import pytest

from vlmr1.fileio import atomic_open, atomic_write, write_jsonl


def test_bytes_text_and_lines(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    atomic_write(target, "caf\u00e9")
    assert target.read_text(encoding="utf-8") == "caf\u00e9"
    atomic_write(target, (str(i) for i in range(3)))
    assert target.read_text() == "0\n1\n2\n"
    assert write_jsonl(tmp_path / "r.jsonl", [{"a": "\u00e9"}, {"b": 1}]) == 2
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == '{"a": "\u00e9"}\n{"b": 1}\n'
    assert sorted(os.listdir(tmp_path / "sub")) == ["f.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "f.jsonl"
    target.write_text("old\n")

    def lines():
        yield "new"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, lines())
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["f.jsonl"]
    with pytest.raises(OSError), atomic_open(target) as f:
        f.write(b"half")
        raise OSError("disk full")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["f.jsonl"]
