"""Reading event logs: `.jsonl` or `.jsonl.gz`, one event per line, with positions.

`-` stands for standard input (plain or gzip, told apart by the gzip magic bytes).
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, cast

from models.deadletter import DeadLetter
from models.ingest import Ingested, ingest, shard_of

STDIN = Path("-")
_GZIP_MAGIC = b"\x1f\x8b"


class LogError(Exception):
    """A log that cannot be read at all (missing, unreadable, wrong format)."""


def check_log(path: Path) -> None:
    """Raise LogError, naming the path, unless it is `-` or a file that exists."""
    if path == STDIN or path.is_file():
        return
    if path.is_dir():
        raise LogError(f"{path}: is a directory, not a log file (.jsonl or .jsonl.gz)")
    raise LogError(f"{path}: no such file")


def open_log(path: Path) -> IO[bytes]:
    """The log's bytes, decompressed when gzip; the caller closes it."""
    check_log(path)
    try:
        if path == STDIN:
            return _stdin()
        if path.suffix != ".gz":
            return path.open("rb")
        return _gunzip(gzip.GzipFile(path, "rb"))
    except (OSError, EOFError) as exc:
        raise LogError(f"{path}: cannot read: {exc}") from exc


def _stdin() -> IO[bytes]:
    raw = sys.stdin.buffer
    if raw.closed:
        raise LogError("-: standard input is read once; give - only once")
    if isinstance(raw, io.BufferedReader) and raw.peek(2)[:2] == _GZIP_MAGIC:
        return _gunzip(gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def _gunzip(gz: gzip.GzipFile) -> IO[bytes]:
    try:
        gz.peek(1)  # fail now, with a clear message, on a stream that is not gzip
    except BaseException:
        gz.close()
        raise
    return cast(IO[bytes], gz)


_BLOCK = 1 << 20


def read_lines(path: Path, size: int = _BLOCK, fill: bool = False
               ) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without the newline) for every non-blank line. Read a block
    at a time and split there, cheaper than a readline per line; `read1` returns what is
    at hand, so a pipe's lines still come as they arrive. `fill`: every read waits for a
    whole block instead (fewer reads: each releases the GIL, see consumers/publish.py)."""
    with open_log(path) as fh:
        try:
            lineno = 0
            pending: list[bytes] = []  # the start of an unfinished line
            buffered = cast(io.BufferedIOBase, fh)  # a file, gzip or stdin: all buffered
            read = buffered.read if fill else buffered.read1
            while block := read(size):
                if b"\n" not in block:  # inside a long line: joined once it ends
                    pending.append(block)
                    continue
                if pending:
                    pending.append(block)
                    block = b"".join(pending)
                lines = block.split(b"\n")
                pending = [lines.pop()]
                for line in lines:
                    lineno += 1
                    line = line.rstrip(b"\r\n")
                    if line and not line.isspace():  # not blank (no stripped copy)
                        yield lineno, line
            rest = b"".join(pending).rstrip(b"\r\n")
            if rest and not rest.isspace():
                yield lineno + 1, rest
        except (OSError, EOFError) as exc:
            raise LogError(f"{path}: cannot read: {exc}") from exc


def source_name(path: Path) -> str:
    """How dead letters name a log (`NAME:LINE`): its full path, so that two logs of one
    name in different folders never share a key; standard input is named with the time
    this run started reading it. Found once per log, not per line (resolving a path asks
    the file system)."""
    return _stdin_name() if path == STDIN else str(path.resolve())


def ingested(paths: Iterable[Path], shard: int = 0, shards: int = 1
             ) -> Iterator[Ingested | DeadLetter]:
    """Every line of the logs through the one ingest step; with `shards` > 1 only the lines
    of part `shard` of the cases (`shard_of`), in their order."""
    for path in paths:
        name = source_name(path)
        for lineno, raw in read_lines(path):
            if shards == 1 or shard_of(raw, shards) == shard:
                yield ingest(raw, name, lineno)


@cache
def _stdin_name() -> str:
    return f"<stdin {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}>"


def log_size(path: Path) -> int:
    """Bytes on disk, for progress bars (compressed size for .gz)."""
    return path.stat().st_size
