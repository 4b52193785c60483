"""The command line as a new user meets it: help, defaults, and one-line errors (exit 2)."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.events import ev
from tests.vardgaranti.test_report_cli import MARCH, write
from vardgaranti.cli import build_parser, main


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run; assert exit 2 with exactly one line on stderr and no traceback; that line."""
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(list(argv)))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ help


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_subcommand_has_a_description_and_every_option_help(name: str) -> None:
    sub = subcommands()[name]
    assert sub.description and len(sub.description) > 30
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings[0]} has no help"


def test_defaults_are_shown_and_dates_read_date(capsys: pytest.CaptureFixture[str]) -> None:
    helps = subcommands()
    generate = helps["generate"].format_help()
    assert "--seed SEED" in generate and "(default: 1)" in generate
    assert "(default: 0.1)" in generate  # a tenth of the region, not 3.7 M events
    demo = helps["demo"].format_help()
    assert "calendar year to generate (default: " in demo
    for name in ("report", "query"):
        text = helps[name].format_help()
        assert "--from DATE" in text and "--to DATE" in text and "--as-of DATE" in text
        assert "FROM_" not in text


# ------------------------------------------------------------------ logs


def test_a_directory_as_a_log_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    err = fails(capsys, "report", str(tmp_path), "--as-of", "2024-03-31")
    assert "is a directory" in err and str(tmp_path) in err


def test_an_empty_log_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    assert "empty log" in fails(capsys, "report", str(empty), "--as-of", "2024-03-31")
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert "empty log" in fails(capsys, "replay", str(empty), "--db", db)


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize("compress", [False, True])
def test_dash_reads_standard_input(compress: bool, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "march.jsonl", MARCH)
    data = log.read_bytes()
    monkeypatch.setattr(sys, "stdin", _Stdin(gzip.compress(data) if compress else data))
    assert main(["report", "-", "--as-of", "2024-03-31", "--format", "json"]) == 0
    from_stdin = json.loads(capsys.readouterr().out)
    assert main(["report", str(log), "--as-of", "2024-03-31", "--format", "json"]) == 0
    assert from_stdin == json.loads(capsys.readouterr().out)
    assert from_stdin["rows"]


def test_report_csv_ends_with_a_newline(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "march.jsonl", MARCH)
    assert main(["report", str(log), "--as-of", "2024-03-31", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and not out.endswith("\n\n")


def test_dead_letters_of_two_logs_of_one_name_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dead letters are keyed by the full path: x.jsonl in two folders are two sources."""
    from sqlalchemy import select

    from consumers.store import DEAD, Store

    db = f"sqlite:///{tmp_path / 's.db'}"
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write(tmp_path / folder / "x.jsonl", MARCH[:1], extra=["{broken"])
        monkeypatch.chdir(tmp_path / folder)
        assert main(["replay", "x.jsonl", "--db", db]) == 0
    with Store(db).engine.connect() as conn:
        sources = sorted(row.source for row in conn.execute(select(DEAD.c.source)))
    assert sources == [f"{tmp_path / 'a' / 'x.jsonl'}:2", f"{tmp_path / 'b' / 'x.jsonl'}:2"]


# ------------------------------------------------------------------ generate


def test_generate_says_the_size_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "year.jsonl.gz"
    assert main(["generate", "--year", "2024", "--out", str(out), "--scale", "0.001"]) == 0
    err = capsys.readouterr().err
    assert "writing about 3,700 events (about 78 kB)" in err
    assert f"to {out}" in err
    before = out.read_bytes()
    message = fails(capsys, "generate", "--year", "2024", "--out", str(out), "--seed", "2",
                    "--scale", "0.001")
    assert "exists; add --force" in message
    assert out.read_bytes() == before
    assert main(["generate", "--year", "2024", "--out", str(out), "--seed", "2",
                 "--scale", "0.001", "--force"]) == 0
    assert out.read_bytes() != before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bad-rate", "2"], "--bad-rate must be between 0 and 0.5"),
        (["--scale", "0"], "--scale must be a number > 0"),
        (["--year", "1900"], "--year must be an integer"),
    ],
)
def test_generate_errors_name_the_option(argv: list[str], message: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = {"--year": "2024", "--out": str(tmp_path / "y.jsonl")}
    args.update(zip(argv[::2], argv[1::2], strict=True))
    err = fails(capsys, "generate", *[x for kv in args.items() for x in kv])
    assert err.startswith(f"vardgaranti: error: {message}")
    assert not (tmp_path / "y.jsonl").exists()


# ------------------------------------------------------------------ units and query


def replayed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
             events: list[dict[str, Any]]) -> str:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["replay", str(write(tmp_path / "log.jsonl", events)), "--db", db]) == 0
    capsys.readouterr()
    return db


def test_units_lists_the_units_with_their_clocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [*MARCH, ev("referral.issued", "r9", "2024-03-01T10:00:00+01:00", "vas-ortopedi",
                         pathway="specialist")]
    db = replayed(tmp_path, capsys, events)
    assert main(["units", "--db", db, "--format", "json"]) == 0
    units = {u["unit_id"]: u for u in json.loads(capsys.readouterr().out)["units"]}
    assert sorted(units) == ["A", "B", "vas-ortopedi"]
    assert units["A"] == {"unit_id": "A", "name": "", "clocks": 3, "open": 1}
    assert units["vas-ortopedi"]["name"]  # the synthetic region's name for it
    assert main(["units", "--db", db]) == 0
    assert "vas-ortopedi" in capsys.readouterr().out


def test_units_of_an_empty_store_is_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert "replay" in fails(capsys, "units", "--db", f"sqlite:///{tmp_path / 'e.db'}")


def test_query_says_final_and_suppresses_small_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 clocks at unit BIG, 2 at unit SMALL; the newest event on 2024-05-10
    events = [ev("referral.issued", f"b{n}", "2024-02-01T10:00:00+01:00", "BIG",
                 pathway="specialist") for n in range(20)]
    events += [ev("referral.issued", f"s{n}", "2024-02-01T10:00:00+01:00", "SMALL",
                  pathway="specialist") for n in range(2)]
    events.append(ev("contact.requested", "k", "2024-05-10T10:00:00+02:00", "BIG",
                     channel="phone"))
    db = replayed(tmp_path, capsys, events)
    march = ["query", "--db", db, "--indicator", "besok_90", "--from", "2024-03-01",
             "--to", "2024-03-31"]
    assert main([*march, "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # 10 May is past 31 March + 25 days: March is final
    assert doc["final"] is True and doc["min_cases"] == 20
    assert doc["suppressed"] == [{"indicator": "besok_90", "unit_id": "SMALL",
                                  "measures": ["waiting"]}]
    assert [r["waiting"] for r in doc["rows"]] == [22, 20, 2]  # rows keep report's shape
    assert "preliminary" not in captured.err

    monkeypatch.setenv("VARDGARANTI_GRACE_DAYS", "60")
    assert main([*march, "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "SMALL,0,0,,< 20,< 20,< 20," in captured.out
    assert "BIG,0,0,,20,0,1.0," in captured.out
    assert "preliminary" in captured.err and "2024-05-30" in captured.err

    monkeypatch.setenv("VARDGARANTI_MIN_CASES", "1")
    assert main([*march, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["final"] is False and doc["suppressed"] == []


# ------------------------------------------------------------------ settings, demo, worker


def test_a_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VARDGARANTI_MIN_CASES", "none")
    err = fails(capsys, "units")
    assert err.startswith("vardgaranti: error: VARDGARANTI_MIN_CASES: ")


def test_demo_checks_the_port_before_the_long_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vardgaranti import demo

    monkeypatch.setattr(demo, "prepare", lambda *a: pytest.fail("replayed on a busy port"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = fails(capsys, "demo", "--port", str(port), "--data-dir", str(tmp_path))
    assert f"--port {port}" in err and "another port" in err


def test_worker_refuses_a_bad_kafka_setting_up_front(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VARDGARANTI_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    err = fails(capsys, "worker", "--bootstrap", "127.0.0.1:1")
    assert "VARDGARANTI_KAFKA_SASL_MECHANISM is required" in err
