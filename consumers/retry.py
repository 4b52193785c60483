"""Waiting for a dependency (broker, store): one log line per attempt and a growing pause.

The line has one form for every service and dependency, `<what> unavailable (<why>);
retrying in N s`, so operations staff (and the tests) recognise it.
"""

from __future__ import annotations

import logging
import threading


class Backoff:
    """Pauses of 0.5 s, doubling up to `most_s`."""

    def __init__(self, what: str, stop: threading.Event, log: logging.Logger,
                 most_s: float) -> None:
        self.what, self.stop, self.log, self.most_s = what, stop, log, most_s
        self.delay = 0.5

    def wait(self, reason: str) -> bool:
        """Say why, pause; True when the service was stopped meanwhile."""
        self.log.warning("%s unavailable (%s); retrying in %.1f s", self.what,
                         reason.splitlines()[0] if reason else "no reason given", self.delay)
        stopped = self.stop.wait(self.delay)
        self.delay = min(self.delay * 2, self.most_s)
        return stopped
