"""`vardgaranti demo` as a user runs it: starts, serves /metrics, stops on SIGINT with 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "VARDGARANTI_API_TOKEN": "demo-token"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vardgaranti", "demo", "--scale", "0.002", "--port", str(port),
         "--year", "2024", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert 'vardgaranti_waiting{indicator="besok_90"' in body
        assert "vardgaranti_completed_within" in body
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "Serving on" in out and "Kontakt samma dag" in out
    assert f"http://127.0.0.1:{port}/arbetslista" in out
    assert "demo-token" in out  # the configured token is shown to the user
