# Every target sets itself up: a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test check lint types bench fuzz soak stacks audit rules dashboards screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## demo: the main job, embedded (no servers needed)
demo: $(STAMP)
	$(BIN)/vardgaranti demo $(DEMO_ARGS)

## test: the test suite (unit, property and integration tests); the PostgreSQL cases run
## when a server answers on 127.0.0.1:5432 (or VARDGARANTI_TEST_DATABASE_URL is set), and
## the first and last lines of the run say whether they ran
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy models consumers streams dashboards web vardgaranti benchmarks

## check: lint, types and tests (what CI runs)
check: lint types test

## screenshots: the pages in headless chromium, saved to docs/screenshots/ (the browser test)
screenshots: $(STAMP)
	VARDGARANTI_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/web/test_browser.py

## bench: performance figures (prints a table, writes benchmarks/results/latest.json)
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## bench-STEP: one part (json report replay replay_pg duckdb memory query api live streaming alerts), e.g. bench-live
bench-%: $(STAMP)
	$(BIN)/python -m benchmarks $* $(BENCH_ARGS)

## soak: 45 minutes at 30 events/s through a worker and a sink (11 years of event time, one
## history), lag and RSS every 30 s, the memory slope after 30 minutes (SOAK_ARGS to change)
SOAK_ARGS ?= --rate 30 --years 20 --duration 2700 --warm-up 1800
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

## stacks: 50 fresh worker+sink stacks (every other one sink first), each checked against the report (STACKS_ARGS, e.g. --hog)
stacks: $(STAMP)
	$(BIN)/python -m benchmarks.stacks --mixed $(STACKS_ARGS)

## fuzz: coverage-guided fuzzing of the line parser with atheris (FUZZ_SECONDS, default 60)
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python fuzz/fuzz_parse_event.py -max_total_time=$(FUZZ_SECONDS) $(FUZZ_ARGS)

## audit: known vulnerabilities of the installed dependencies (pip-audit; needs the network)
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[audit]'
	@mkdir -p .cache && rm -f .cache/audit.json
	@$(BIN)/pip-audit --local --skip-editable --progress-spinner off --desc off \
		--format json --output .cache/audit.json $(AUDIT_ARGS) 2>.cache/audit.err; \
	$(BIN)/python -c "$$AUDIT_SUMMARY"

# Reads pip-audit's JSON: one line per vulnerability, then a summary; exit 2 when nothing
# could be looked up (the vulnerability service is out of reach), 1 when any is found.
define AUDIT_SUMMARY
import json, pathlib, sys
out, err = pathlib.Path(".cache/audit.json"), pathlib.Path(".cache/audit.err").read_text()
why = (err.strip().splitlines() or ["no output"])[-1][:200]
def unreachable(detail):
    print(f"audit: the vulnerability service cannot be reached from this machine: {detail}")
    sys.exit(2)
if not out.exists() or not out.read_text().strip():
    unreachable(why)
deps = json.loads(out.read_text())["dependencies"]
audited = [d for d in deps if "skip_reason" not in d]
if not audited:
    unreachable(f"none of the {len(deps)} installed dependencies could be looked up")
found = [(d, v) for d in audited for v in d["vulns"]]
for d, v in found:
    fix = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
    print(f"{d['name']} {d['version']}: {v['id']} (fixed in {fix})")
skipped = len(deps) - len(audited)
print(f"audit: {len(audited)} dependencies audited, known vulnerabilities: {len(found)}"
      + (f"; {skipped} could not be looked up" if skipped else ""))
sys.exit(1 if found else 0)
endef
export AUDIT_SUMMARY

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .cache
