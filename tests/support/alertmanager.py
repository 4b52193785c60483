"""A real Alertmanager for tests (the Debian `prometheus-alertmanager` binary) and a webhook
receiver that keeps what it is sent.

`running_alertmanager(binary, config, workdir)` starts it on a free local port with
clustering off, waits until it is ready and stops it afterwards. `Webhook` is an HTTP
server in a thread; every POSTed notification (Alertmanager's webhook JSON) is appended to
`received`.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support.prometheus import free_port, serving


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class Webhook:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append({"path": self.path, **json.loads(body)})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def running_alertmanager(binary: str, config: Mapping[str, Any],
                         workdir: Path) -> Iterator[str]:
    """The Alertmanager's base URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving([binary, f"--config.file={config_file}", f"--storage.path={workdir / 'am'}",
                  f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                  "--log.level=warn"], workdir, workdir / "alertmanager.log", url):
        yield url
