"""Opening logs: files, gzip, standard input, and the one-line refusals."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from consumers.logs import STDIN, LogError, ingested, read_lines
from models.deadletter import DeadLetter


def test_directory_and_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="is a directory"):
        list(read_lines(tmp_path))
    with pytest.raises(LogError, match="no such file"):
        list(read_lines(tmp_path / "missing.jsonl"))


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("compress", [False, True])
def test_standard_input_plain_or_gzip(compress: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    data = b'{"a": 1}\n\n{"b": 2}\n'
    monkeypatch.setattr(sys, "stdin", _Stdin(gzip.compress(data) if compress else data))
    assert list(read_lines(STDIN)) == [(1, b'{"a": 1}'), (3, b'{"b": 2}')]


def _sources(path: Path) -> list[str]:
    return [got.source for got in ingested([path]) if isinstance(got, DeadLetter)]


def test_dead_letters_name_the_full_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "x.jsonl").write_bytes(b"{}\n" * 6 + b"not json\n")
    assert _sources(Path("x.jsonl"))[-1] == f"{tmp_path.resolve() / 'x.jsonl'}:7"
    assert _sources(Path("a/../x.jsonl")) == _sources(Path("x.jsonl"))
    monkeypatch.setattr(sys, "stdin", _Stdin(b"{}\n{}\nnot json\n"))
    stdin = _sources(STDIN)[-1]
    assert stdin.startswith("<stdin ") and stdin.endswith(">:3")


def test_standard_input_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b'{"a": 1}\n'))
    assert len(list(read_lines(STDIN))) == 1
    with pytest.raises(LogError, match="give - only once"):
        list(read_lines(STDIN))
