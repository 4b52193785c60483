"""Dead letters: what could not be counted, kept with the reason and where it came from.

Nothing is dropped silently. The original bytes are kept, with personnummer-shaped values
masked: identity numbers must not be stored anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import orjson

from models.events import mask_personnummer


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: str  # file:line or topic/partition/offset
    reason: str
    message: str
    raw: str  # original line, decoded leniently, identity numbers masked

    @classmethod
    def of(cls, source: str, reason: str, message: str, raw: bytes) -> DeadLetter:
        text = raw.decode("utf-8", errors="replace")
        return cls(source, reason, mask_personnummer(message), mask_personnummer(text))

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"source": self.source, "reason": self.reason, "message": self.message,
             "raw": self.raw}
        )


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
