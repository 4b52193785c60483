"""Reading event logs: `.jsonl` or `.jsonl.gz`, one event per line, with positions."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast


class LogError(Exception):
    """A log that cannot be read at all (missing, unreadable, wrong format)."""


def open_log(path: Path) -> IO[bytes]:
    """The log's bytes, decompressed when the name ends in .gz; the caller closes it."""
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    try:
        if path.suffix != ".gz":
            return path.open("rb")
        gz = gzip.GzipFile(path, "rb")
        try:
            gz.peek(1)  # fail now, with a clear message, on a file that is not gzip
        except BaseException:
            gz.close()
            raise
        return cast(IO[bytes], gz)
    except (OSError, EOFError) as exc:
        raise LogError(f"{path}: cannot read: {exc}") from exc


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line without the newline) for every non-blank line."""
    with open_log(path) as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip(b"\r\n")
                if line and not line.isspace():  # not blank (no stripped copy)
                    yield lineno, line
        except (OSError, EOFError) as exc:
            raise LogError(f"{path}: cannot read: {exc}") from exc


def log_size(path: Path) -> int:
    """Bytes on disk, for progress bars (compressed size for .gz)."""
    return path.stat().st_size
