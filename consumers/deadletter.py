"""Dead-letter files: the rejected lines of `report`, as JSON lines (see models.deadletter)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO

from models.deadletter import DeadLetter

__all__ = ["DeadLetter", "DeadLetterFile"]


class DeadLetterFile:
    """Appends dead letters to a JSON-lines file (or only counts them when no path)."""

    def __init__(self, path: Path | None) -> None:
        self.counts: Counter[str] = Counter()
        self._fh: IO[bytes] | None = path.open("wb") if path is not None else None

    def add(self, letter: DeadLetter) -> None:
        self.counts[letter.reason] += 1
        if self._fh is not None:
            self._fh.write(letter.to_json() + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    def __enter__(self) -> DeadLetterFile:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
