"""Coverage-guided fuzzing of the line parser with atheris (libFuzzer): `make fuzz`.

Every input is one log line. Invariants, checked on each:
- `parse_event` never raises: it returns an event or a rejection;
- a rejection has a reason from the README's stable set and a one-line message;
- its dead letter holds no personnummer-shaped value (nor one written with JSON escapes)
  and no NUL;
- a valid event reduces to a fact and goes through the clock rules without trouble.

    python fuzz/fuzz_parse_event.py [-max_total_time=60] [libFuzzer options] [CORPUS_DIR…]

Without a corpus directory it uses .cache/fuzz/corpus, seeded with the example log. The
run is a child process whose libFuzzer output is passed through; at the end one line says
how many inputs were tried, in how long, and the coverage reached. A broken invariant
stops the run with the input saved under .cache/fuzz/ and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]

with atheris.instrument_imports(include=["models", "consumers"]):
    from consumers.deadletter import DeadLetter
    from models.calendar import local_day
    from models.clocks import Rules, evaluate, to_fact
    from models.events import PERSONNUMMER, Rejection, parse_event

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".cache" / "fuzz"
SEEDS = ROOT / "vardgaranti" / "examples" / "example.jsonl"
DICTIONARY = Path(__file__).with_name("event.dict")
CHILD = "VARDGARANTI_FUZZ_CHILD"
KNOWN_REASONS = frozenset({
    "invalid_json", "invalid_encoding", "not_an_object", "missing_field", "blank_field",
    "too_long", "wrong_type", "naive_timestamp", "invalid_timestamp", "unknown_type",
    "invalid_value", "personnummer", "reserved_unit",
})
RULES = Rules()
OUTCOMES: Counter[str] = Counter()
STATS_EVERY = 1 << 14


class InvariantBroken(AssertionError):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise InvariantBroken(what)


def unmasked(text: str) -> bool:
    """A personnummer-shaped value in the text, or in the JSON it decodes to."""
    if PERSONNUMMER.search(text):
        return True
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return bool(PERSONNUMMER.search(json.dumps(decoded, ensure_ascii=False)))


def test_one_input(data: bytes) -> None:
    parsed = parse_event(data)  # anything it raises is a finding
    if isinstance(parsed, Rejection):
        check(parsed.reason in KNOWN_REASONS, f"unknown reason {parsed.reason!r}")
        check(bool(parsed.message) and "\n" not in parsed.message, "message not one line")
        letter = DeadLetter.of("fuzz:1", parsed.reason, parsed.message, data)
        for text in (letter.raw, letter.message):
            check(not unmasked(text), "personnummer-shaped value in a dead letter")
            check("\x00" not in text, "NUL in a dead letter")
        OUTCOMES[parsed.reason] += 1
    else:
        fact = to_fact(parsed)
        local_day(fact.ts)
        evaluate([fact], RULES)
        OUTCOMES["valid"] += 1
    total = OUTCOMES.total()
    if total % STATS_EVERY == 0:
        (WORK / "outcomes.json").write_text(json.dumps({"inputs": total, **OUTCOMES}))


def seed(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    for n, line in enumerate(SEEDS.read_bytes().splitlines()):
        (corpus / f"example-{n:03d}").write_bytes(line)


def run_child(args: list[str]) -> int:
    """Run libFuzzer in a child (it exits the process at the end), then sum up."""
    WORK.mkdir(parents=True, exist_ok=True)
    if not any(not a.startswith("-") for a in args):
        corpus = WORK / "corpus"
        seed(corpus)
        args = [*args, str(corpus)]
    if not any(a.startswith("-dict=") for a in args):
        args = [f"-dict={DICTIONARY}", *args]
    if not any(a.startswith("-artifact_prefix=") for a in args):
        args = [f"-artifact_prefix={WORK}/", *args]
    (WORK / "outcomes.json").unlink(missing_ok=True)
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, *args], env={**os.environ, CHILD: "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
    )
    assert child.stdout is not None
    runs = cov = ft = corpus_size = ""
    for line in child.stdout:
        sys.stdout.write(line)
        if m := re.search(r"cov: (\d+) ft: (\d+) corp: (\d+)", line):
            cov, ft, corpus_size = m.groups()
        if m := re.match(r"Done (\d+) runs in (\d+) second", line):
            runs = m.group(1)
    code = child.wait()
    seconds = time.monotonic() - started
    if code != 0:
        print(f"fuzz: invariant broken or crash (exit {code}); the input is saved in {WORK}")
        return code
    outcomes = WORK / "outcomes.json"
    detail = ""
    if outcomes.exists():
        counts = json.loads(outcomes.read_text())
        shown = sorted(((k, v) for k, v in counts.items() if k != "inputs"),
                       key=lambda kv: -kv[1])
        detail = f"; of the first {counts['inputs']}: " + ", ".join(f"{k} {v}" for k, v in shown)
    print(f"fuzz: {runs or '?'} inputs tried in {seconds:.0f} s, coverage {cov or '?'} edges "
          f"({ft or '?'} features), corpus {corpus_size or '?'} inputs; no invariant broken"
          + detail)
    return 0


def main() -> int:
    if os.environ.get(CHILD):
        atheris.Setup(sys.argv, test_one_input)
        atheris.Fuzz()  # does not return
    return run_child(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
