"""Dead letters: what could not be counted, kept with the reason and where it came from.

Nothing is dropped silently. The original bytes are kept, with personnummer-shaped values
masked: identity numbers must not be stored anywhere. The same record goes to a file, the
store, and the streaming dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "message": self.message,
                "raw": self.raw}

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())

    @classmethod
    def from_json(cls, data: bytes) -> DeadLetter:
        """A record as written by `to_json` (the dead-letter topic's value)."""
        d = orjson.loads(data)
        return cls(str(d["source"]), str(d["reason"]), str(d["message"]), str(d["raw"]))
