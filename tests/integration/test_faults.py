"""Faults injected into the streaming path; the stored aggregates must still equal the report.

* the worker and the sink each killed with SIGKILL at seeded pseudo-random points of a
  replay, and restarted;
* the broker down for a while mid-stream (a private mock broker, `.down()`/`.up()`);
* PostgreSQL unreachable while the sink writes (a TCP proxy in front of it is closed).

Each test prints the faults injected and how long each process took to be ready again; the
README's "Reliability" section quotes them. Nothing here asserts on time.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from consumers.report import Report
from tests.integration.test_streaming import (  # noqa: F401  (log_file, reports: fixtures)
    PERIODS,
    assert_store_matches,
    log_file,
    reports,
)
from tests.support.kafka import KafkaBroker
from tests.support.streaming import Proc, Stack, free_port, wait_until

pytestmark = pytest.mark.integration

SEED = 42  # its kill order interleaves the worker and the sink
KILLS_EACH = 3
REPLAY_S = 60.0  # the replay is paced to last about this long, so the kills fall within it
OUTAGE_S = 8.0
PG_URL = os.environ.get("VARDGARANTI_TEST_DATABASE_URL")


def ready_again(proc: Proc, stack: Stack, since: float) -> float:
    """Wait until `proc` is ready; seconds since `since` (a figure, never asserted)."""
    wait_until(f"{proc.name} to be ready again", proc.ready, logs=stack.logs)
    return time.monotonic() - since


def not_ready(proc: Proc) -> bool:
    """Running and live (/healthz 200: nothing to restart) but not ready (/readyz 503)."""
    return (proc.process.poll() is None and proc.get("/readyz")[0] == 503
            and proc.get("/healthz")[0] == 200)


def clean_log(proc: Proc) -> str:
    text = proc.log.read_text(errors="replace")
    assert "Traceback" not in text, proc.tail()
    return text


# ---------------------------------------------------------------- SIGKILL during a replay


def test_worker_and_sink_killed_at_random_points_of_a_replay(
    kafka_bootstrap: str, tmp_path: Path, log_file: Path,  # noqa: F811
    reports: dict[tuple[date, date], Report],  # noqa: F811
) -> None:
    stack = Stack(kafka_bootstrap, tmp_path)
    stack.create_topics()
    rng = random.Random(SEED)
    targets = ["worker"] * KILLS_EACH + ["sink"] * KILLS_EACH
    rng.shuffle(targets)
    points = sorted(rng.uniform(0.05, 0.9) for _ in targets)
    lines = reports[PERIODS[0]].stats.lines
    published = [0]
    failure: list[BaseException] = []

    def replay() -> None:
        try:
            stack.publish(log_file, rate=lines / REPLAY_S,
                          progress=lambda n: published.__setitem__(0, n))
        except BaseException as exc:  # reported by the test thread
            failure.append(exc)

    try:
        live = {"worker": stack.worker(), "sink": stack.sink()}
        publisher = threading.Thread(target=replay, name="replay", daemon=True)
        publisher.start()
        recovery: dict[str, list[float]] = {"worker": [], "sink": []}
        at: list[str] = []
        for target, point in zip(targets, points, strict=True):
            def reached(point: float = point) -> bool:
                return published[0] >= point * lines or bool(failure)

            wait_until(f"the replay to reach {point:.0%}", reached, logs=stack.logs)
            assert not failure, failure
            at.append(f"{target}@{published[0] / lines:.0%}")
            killed = time.monotonic()
            assert live[target].stop(signal.SIGKILL) == -signal.SIGKILL, stack.logs()
            live[target] = stack.worker(wait=False) if target == "worker" else stack.sink(
                wait=False)
            recovery[target].append(ready_again(live[target], stack, killed))
        publisher.join(REPLAY_S * 3)
        assert not publisher.is_alive() and not failure, failure
        assert published[0] == lines
        assert_store_matches(stack, reports)

        killed_procs = [p for p in stack.procs if p.process.returncode == -signal.SIGKILL]
        assert len(killed_procs) == 2 * KILLS_EACH
        print(f"\nfaults injected: {len(killed_procs)} SIGKILLs ({', '.join(at)}); "
              f"events lost: 0; ready again after SIGKILL: worker "
              f"{_spread(recovery['worker'])}, sink {_spread(recovery['sink'])}")
    finally:
        stack.close()


def _spread(seconds: list[float]) -> str:
    return (f"median {statistics.median(seconds):.1f} s "
            f"(min {min(seconds):.1f}, max {max(seconds):.1f})")


# ---------------------------------------------------------------- the broker down


def test_broker_down_mid_stream_not_ready_then_resumes(
    private_mock_broker: KafkaBroker, tmp_path: Path, log_file: Path,  # noqa: F811
    reports: dict[tuple[date, date], Report],  # noqa: F811
) -> None:
    stack = Stack(private_mock_broker.bootstrap, tmp_path)
    stack.create_topics()
    try:
        worker, sink = stack.worker(), stack.sink()
        stack.publish(log_file)
        total = reports[PERIODS[0]].stats.events
        wait_until("the worker to be mid-stream",
                   lambda: worker.metric("vardgaranti_events_processed_total") >= total // 4,
                   logs=stack.logs)

        private_mock_broker.down()
        went_down = time.monotonic()
        wait_until("the worker to report not-ready", lambda: not_ready(worker), 30, stack.logs)
        wait_until("the sink to report not-ready", lambda: not_ready(sink), 30, stack.logs)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - went_down)))
        # still down, still alive, still not ready
        assert not_ready(worker) and not_ready(sink), stack.logs()
        private_mock_broker.up()
        came_up = time.monotonic()

        worker_s, sink_s = ready_again(worker, stack, came_up), ready_again(sink, stack, came_up)
        assert_store_matches(stack, reports)
        caught_up_s = time.monotonic() - came_up

        text = clean_log(sink)
        assert re.search(r"broker unavailable \(.+\); retrying in [\d.]+ s", text), text
        assert "broker reachable again" in text, text
        print(f"\nbroker down {came_up - went_down:.1f} s mid-stream; events lost: 0; "
              f"ready again after it came back: worker {worker_s:.1f} s, sink {sink_s:.1f} s; "
              f"store equal to the report {caught_up_s:.1f} s after")
    finally:
        stack.close()


# ---------------------------------------------------------------- PostgreSQL unreachable


class TcpProxy:
    """Forwards a local port to `target`; `down()` drops every connection and refuses new
    ones (the port is closed), `up()` listens on the same port again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            _shut(self._listener)  # wakes the accepting thread
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                _shut(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # down()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):  # or Nagle + delayed ACKs add 40 ms per reply
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        _shut(dst)  # the other direction ends too
        with self._lock:
            self._open.discard(src)
        src.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def pg_database() -> Iterator[URL]:
    """A database of its own on the test PostgreSQL server (dropped afterwards)."""
    if not PG_URL:
        pytest.skip("PostgreSQL: set VARDGARANTI_TEST_DATABASE_URL (postgresql+psycopg://…)")
    import psycopg

    server = make_url(PG_URL)
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"vg_faults_{uuid.uuid4().hex[:8]}"
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {server.host}:{server.port or 5432} is not reachable: "
                    f"{str(exc).splitlines()[0]}")
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name)
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def halves(path: Path, out: Path) -> tuple[Path, Path]:
    lines = path.read_bytes().splitlines(keepends=True)
    first, second = out / "first.jsonl", out / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2:]))
    return first, second


def test_store_down_while_the_sink_writes_retries_with_backoff(
    kafka_bootstrap: str, tmp_path: Path, log_file: Path,  # noqa: F811
    reports: dict[tuple[date, date], Report],  # noqa: F811
    pg_database: URL,
) -> None:
    proxy = TcpProxy((pg_database.host or "127.0.0.1", pg_database.port or 5432))
    via_proxy = pg_database.set(host="127.0.0.1", port=proxy.port)
    stack = Stack(kafka_bootstrap, tmp_path,
                  database_url=via_proxy.render_as_string(hide_password=False))
    stack.create_topics()
    first, second = halves(log_file, tmp_path)
    try:
        # only the sink's way to the store fails: a worker whose store is down waits, and
        # the sink would have nothing to write (that wait: tests/streams/test_worker.py)
        worker = stack.worker(database_url=pg_database.render_as_string(hide_password=False))
        sink = stack.sink()
        stack.publish(first)
        wait_until("the sink to write", lambda: sink.metric("vardgaranti_sink_records_total") > 0,
                   logs=stack.logs)

        proxy.down()
        went_down = time.monotonic()
        stack.publish(second)  # the worker goes on; the sink now has writes to make
        wait_until("the sink to report not-ready", lambda: not_ready(sink), 60, stack.logs)
        assert sink.metric("vardgaranti_sink_store_up") == 0
        assert worker.ready(), "the worker's own way to the store is up"
        wait_until("the sink to retry twice",
                   lambda: sink.metric("vardgaranti_sink_write_retries_total") >= 2, 60,
                   stack.logs)
        time.sleep(max(0.0, 10.0 - (time.monotonic() - went_down)))
        assert not_ready(sink), stack.logs()
        proxy.up()
        came_up = time.monotonic()

        sink_s = ready_again(sink, stack, came_up)
        assert_store_matches(stack, reports)
        caught_up_s = time.monotonic() - came_up

        text = clean_log(sink)
        delays = [float(d) for d in re.findall(
            r"store unavailable \(.+\); retrying in ([\d.]+) s", text)]
        assert len(delays) >= 2, text
        assert delays == sorted(delays) and delays[-1] > delays[0], delays  # backing off
        assert "store reachable again" in text, text
        assert "@" not in "".join(re.findall(r"store unavailable.*", text))  # no credentials
        assert sink.metric("vardgaranti_sink_write_retries_total") == len(delays)
        print(f"\nPostgreSQL unreachable {came_up - went_down:.1f} s while the sink wrote: "
              f"{len(delays)} retries (backoff {', '.join(f'{d:g}' for d in delays)} s); "
              f"events lost: 0; sink ready {sink_s:.1f} s after it came back, store equal "
              f"to the report {caught_up_s:.1f} s after")
    finally:
        stack.close()
        proxy.down()
