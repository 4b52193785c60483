"""Runs one step in this (fresh) process: `python -m benchmarks.child TARGET CONTEXT OUT`.

TARGET is "module:function", CONTEXT a JSON file with the Context, OUT where the step's
result goes as JSON, with this process's own peak RSS.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path

from benchmarks.suite import Context, StepResult


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str]) -> int:
    target, ctx_file, out_file = argv
    module, function = target.split(":")
    ctx = Context(**json.loads(Path(ctx_file).read_text()))
    result: StepResult = getattr(importlib.import_module(module), function)(ctx)
    result.peak_rss_mb = peak_rss_mb()
    Path(out_file).write_text(json.dumps(result.to_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
