"""A real Prometheus server for tests: the Debian `prometheus` binary on a free local port.

`running_prometheus(binary, config, workdir)` writes the configuration, starts the server
with its storage under `workdir`, waits until it is ready and stops it afterwards. The
returned :class:`Prometheus` talks to its HTTP API (`/api/v1/...`) with the standard
library only. Install the binary with `apt-get install prometheus`.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

STARTUP_TIMEOUT_S = 60.0
T = TypeVar("T")


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    """One element of an instant-query result (a scalar has no labels)."""

    labels: Mapping[str, str]
    value: float


class PrometheusError(AssertionError):
    """The server refused a request or a query (the message is Prometheus' own)."""


class Prometheus:
    # seconds a request may take (a year-long range query on a loaded machine takes longer)
    timeout: float = 30.0

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + query, timeout=self.timeout) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:  # 400/422 carry Prometheus' error in JSON
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: "
                                  f"{body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query evaluated now, or at unix time `at`."""
        params = [("query", expr)] + ([("time", f"{at:.3f}")] if at is not None else [])
        data = self._get("/api/v1/query", params)
        kind, result = data["resultType"], data["result"]
        if kind == "scalar":
            return [Sample({}, float(result[1]))]
        if kind == "vector":
            return [Sample(r["metric"], float(r["value"][1])) for r in result]
        raise PrometheusError(f"{expr}: unexpected result type {kind}")

    def query_range(self, expr: str, start: float, end: float,
                    step: float) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """A range query: per series its labels and (unix time, value) points."""
        data = self._get("/api/v1/query_range", [
            ("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}"),
            ("step", f"{step:g}")])
        return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]])
                for r in data["result"]]

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's `label_values(match, label)` offers, sorted."""
        return sorted(self._get(f"/api/v1/label/{label}/values", [("match[]", match)]))

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health and last error."""
        return [r for g in self._get("/api/v1/rules")["groups"] for r in g["rules"]]

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 30.0,
             every: float = 0.25) -> T:
    """Poll `probe` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got is not None and got is not False:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


def finite(samples: list[Sample]) -> bool:
    return all(math.isfinite(s.value) for s in samples)


@contextmanager
def serving(args: Sequence[str], workdir: Path, log: Path, url: str) -> Iterator[None]:
    """Start a server process, wait until `url`/-/ready answers, stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                raise AssertionError(f"{Path(args[0]).name} exited with {proc.returncode}:"
                                     f"\n{tail}")
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(ready, f"{Path(args[0]).name} to become ready", STARTUP_TIMEOUT_S)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_prometheus(binary: str, config: Mapping[str, Any], workdir: Path,
                       flags: Sequence[str] = ()) -> Iterator[Prometheus]:
    """`flags`: more command-line flags (e.g. a retention long enough for backfilled
    history)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    port = free_port()
    prom = Prometheus(f"http://127.0.0.1:{port}", workdir / "prometheus.log")
    with serving([binary, f"--config.file={config_file}",
                  f"--storage.tsdb.path={workdir / 'data'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags],
                 workdir, prom.log, prom.url):
        yield prom
