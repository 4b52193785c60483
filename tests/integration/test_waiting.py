"""Worker and sink started before what they depend on: they say so in one line per attempt,
back off, stay alive (/healthz 200) and not ready (/readyz 503), and stop cleanly on SIGTERM;
once the broker answers they serve as usual. A setting that cannot work is one line, exit 2.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.integration.test_faults import not_ready
from tests.support.kafka import KafkaBroker
from tests.support.streaming import Proc, Stack, free_port, report_cells, wait_until
from vardgaranti.generate import generate

pytestmark = pytest.mark.integration

RETRY = re.compile(r"^.*(broker|store) unavailable \((.+)\); retrying in ([\d.]+) s$", re.M)


def retries(proc: Proc, what: str) -> list[float]:
    return [float(m[3]) for m in RETRY.finditer(proc.log.read_text(errors="replace"))
            if m[1] == what]


def assert_waited_then_stopped(proc: Proc, what: str, stack: Stack) -> None:
    wait_until(f"{proc.name} to be alive and not ready", lambda: not_ready(proc), 60,
               stack.logs)
    wait_until(f"{proc.name} to retry twice", lambda: len(retries(proc, what)) >= 3, 60,
               stack.logs)
    delays = retries(proc, what)
    assert delays == sorted(delays) and delays[-1] > delays[0], delays  # backing off
    assert proc.stop(signal.SIGTERM) == 0, stack.logs()
    assert "Traceback" not in proc.log.read_text(errors="replace"), proc.tail()


def test_without_a_broker_worker_and_sink_wait_alive_and_not_ready(tmp_path: Path) -> None:
    stack = Stack(f"127.0.0.1:{free_port()}", tmp_path)  # nothing listens there
    try:
        worker, sink = stack.worker(wait=False), stack.sink(wait=False)
        assert_waited_then_stopped(worker, "broker", stack)
        assert_waited_then_stopped(sink, "broker", stack)
    finally:
        stack.close()


def test_sink_waits_for_postgresql(kafka_bootstrap: str, tmp_path: Path) -> None:
    stack = Stack(kafka_bootstrap, tmp_path,
                  database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    try:
        sink = stack.sink(wait=False)
        assert_waited_then_stopped(sink, "store", stack)
    finally:
        stack.close()


def test_worker_and_sink_started_before_the_broker_serve_once_it_answers(
    private_mock_broker: KafkaBroker, tmp_path: Path
) -> None:
    log = tmp_path / "log.jsonl"
    generate(log, 2024, seed=7, scale=0.0002, bad_rate=0.0, progress=False)
    stack = Stack(private_mock_broker.bootstrap, tmp_path)
    stack.create_topics()
    private_mock_broker.down()
    try:
        worker, sink = stack.worker(wait=False), stack.sink(wait=False)
        for proc in (worker, sink):
            wait_until(f"{proc.name} to wait for the broker",
                       lambda p=proc: not_ready(p) and bool(retries(p, "broker")), 60,
                       stack.logs)
        private_mock_broker.up()
        for proc in (worker, sink):
            wait_until(f"{proc.name} to be ready", proc.ready, logs=stack.logs)
        stack.publish(log)
        stack.wait_for_store(report_cells(log, [(date(2024, 1, 1), date(2024, 12, 31))]))
    finally:
        stack.close()


@pytest.mark.parametrize("command", ["worker", "sink"])
def test_a_kafka_setting_that_cannot_work_is_one_line_and_exit_2(
    command: str, tmp_path: Path
) -> None:
    stack = Stack(f"127.0.0.1:{free_port()}", tmp_path)
    env = {**stack.env(), "VARDGARANTI_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    done = subprocess.run(
        [sys.executable, "-m", "vardgaranti", command, "--port", str(free_port())],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "VARDGARANTI_KAFKA_SASL_MECHANISM" in lines[0], lines
