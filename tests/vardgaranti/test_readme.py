"""The README and docs/ a new user follows: their commands parse and their links lead somewhere."""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import pytest

from vardgaranti import cli

ROOT = Path(__file__).resolve().parents[2]
# the docs written with the README (the others' docs check their own links)
DOCS = [ROOT / "docs" / f"{name}.md" for name in (
    "index", "commands", "operations", "rules", "events", "deployment", "settings", "metrics",
    "design", "performance", "reliability")]
# written by the other parts of issue 16's work; linked before they exist on this branch
COMING = {"docs/live-view.md", "docs/streaming.md", "docs/sql.md", "docs/alerts.md",
          "docs/runbooks", "docs/pages.md"}


def shell_lines(text: str) -> list[str]:
    """The `vardgaranti …` command lines of sh code blocks."""
    lines, in_sh = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        command = line.strip().removeprefix(".venv/bin/")
        if in_sh and command.startswith("vardgaranti "):
            lines.append(command)
    return lines


def section(path: Path, heading: str) -> str:
    """A document's text from `heading` to the next heading of its level."""
    level = heading.split(" ", 1)[0] + " "
    text = path.read_text().split(f"\n{heading}\n", 1)[1]
    return text.split(f"\n{level}", 1)[0]


TOUR = [("README.md", line) for line in shell_lines((ROOT / "README.md").read_text())] + [
    ("deployment.md", line) for line in shell_lines(
        section(ROOT / "docs" / "deployment.md", "## Streaming without Docker (the test broker)"))]


@pytest.mark.parametrize(("doc", "line"), TOUR, ids=[f"{d}: {line}" for d, line in TOUR])
def test_every_command_of_the_tour_parses(doc: str, line: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_existing", Path)  # the logs are made by earlier steps
    argv = shlex.split(line.replace('"$VARDGARANTI_KAFKA_BOOTSTRAP"', "127.0.0.1:9092"),
                       comments=True)
    argv = [a for a in argv[1:] if a != "&"]
    args = cli.build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_the_tour_covers_demo_report_query_and_streaming() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = {line.split()[1] for _, line in TOUR}
    assert {"report", "replay", "query", "units", "generate", "topics", "worker",
            "sink"} <= commands
    assert "make demo" in readme and "make test" in readme
    assert len(readme.splitlines()) < 120  # a front door, not the manual


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    found = set(re.findall(r'<a id="([^"]+)"></a>', text))
    found |= {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    return found


LINKS = [(doc, target) for doc in (ROOT / "README.md", *DOCS)
         for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text())
         if not target.startswith(("http://", "https://"))]


@pytest.mark.parametrize(("doc", "target"), LINKS,
                         ids=[f"{d.relative_to(ROOT)} -> {t}" for d, t in LINKS])
def test_links_lead_somewhere(doc: Path, target: str) -> None:
    file, _, anchor = target.partition("#")
    path = (doc.parent / file).resolve() if file else doc
    relative = path.relative_to(ROOT).as_posix()
    if relative.rstrip("/") in COMING:
        return
    assert path.exists(), f"{doc.name}: {target} does not exist"
    if anchor and path.suffix == ".md":
        assert anchor in anchors(path), f"{doc.name}: no anchor #{anchor} in {relative}"
