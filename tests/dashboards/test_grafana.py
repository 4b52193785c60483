"""push/check against a local stand-in for the Grafana HTTP API (records what it gets)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards import grafana
from dashboards.build import UIDS

TOKEN = "test-token"


class FakeGrafana(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.boards: dict[str, dict[str, Any]] = {}
        self.folders: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = json.loads(raw) if raw else {}
        self.server.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers), "body": body})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"message": "Unauthorized"})
        if self.command == "POST" and self.path == "/api/dashboards/db":
            board = dict(body["dashboard"])
            old = self.server.boards.get(board["uid"], {})
            board["id"] = old.get("id", len(self.server.boards) + 1)
            board["version"] = old.get("version", 0) + 1
            self.server.boards[board["uid"]] = board
            return self._reply(200, {"status": "success", "uid": board["uid"],
                                     "version": board["version"]})
        if self.command == "GET" and self.path.startswith("/api/dashboards/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid not in self.server.boards:
                return self._reply(404, {"message": "Dashboard not found"})
            return self._reply(200, {"dashboard": self.server.boards[uid],
                                     "meta": {"folderUid": "vardgaranti"}})
        if self.command == "GET" and self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid not in self.server.folders:
                return self._reply(404, {"message": "folder not found"})
            return self._reply(200, {"uid": uid, "title": "Vårdgaranti"})
        if self.command == "POST" and self.path == "/api/folders":
            self.server.folders.add(body["uid"])
            return self._reply(200, {"uid": body["uid"], "title": body["title"]})
        return self._reply(404, {"message": "not found"})

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()


@pytest.fixture
def server() -> Iterator[FakeGrafana]:
    srv = FakeGrafana()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_push_posts_every_dashboard(server: FakeGrafana) -> None:
    pushed = grafana.push(server.url, TOKEN)
    assert sorted(pushed) == sorted(UIDS.values())
    posts = [r for r in server.requests
             if r["method"] == "POST" and r["path"] == "/api/dashboards/db"]
    assert len(posts) == 4
    for r in posts:
        assert r["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert r["body"]["overwrite"] is True
        assert r["body"]["folderUid"] == "vardgaranti"
        assert r["body"]["dashboard"]["uid"] in UIDS.values()
        assert "id" not in r["body"]["dashboard"]
    # the folder was missing, so push created it first
    assert any(r["method"] == "POST" and r["path"] == "/api/folders" for r in server.requests)
    assert "vardgaranti" in server.folders


def test_push_without_folder(server: FakeGrafana) -> None:
    grafana.push(server.url, TOKEN, folder=None)
    assert not any("/api/folders" in r["path"] for r in server.requests)
    posts = [r for r in server.requests if r["path"] == "/api/dashboards/db"]
    assert all("folderUid" not in r["body"] for r in posts)


def test_check_matches_after_push_ignoring_id_and_version(server: FakeGrafana) -> None:
    grafana.push(server.url, TOKEN)
    grafana.push(server.url, TOKEN)  # version 2 now: still equal
    assert all(b["version"] == 2 for b in server.boards.values())
    assert grafana.check(server.url, TOKEN) == []
    gets = [r for r in server.requests if r["path"].startswith("/api/dashboards/uid/")]
    assert {r["path"].rsplit("/", 1)[1] for r in gets} == set(UIDS.values())


def test_check_reports_a_modified_dashboard(server: FakeGrafana) -> None:
    grafana.push(server.url, TOKEN)
    board = server.boards["vardgaranti-unit"]
    board["panels"][0]["title"] = "edited in the UI"
    board["refresh"] = "5s"
    diffs = grafana.check(server.url, TOKEN)
    assert len(diffs) == 2
    assert all(d.startswith("vardgaranti-unit.") for d in diffs)
    assert any("panels[0].title" in d and "edited in the UI" in d for d in diffs)
    assert any(".refresh" in d for d in diffs)


def test_check_reports_missing_dashboards(server: FakeGrafana) -> None:
    diffs = grafana.check(server.url, TOKEN)
    assert sorted(diffs) == sorted(f"{u}: missing in Grafana" for u in UIDS.values())


def test_unauthorized_is_a_one_line_error(server: FakeGrafana) -> None:
    with pytest.raises(grafana.GrafanaError) as e:
        grafana.push(server.url, "wrong-token")
    assert "401" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(grafana.GrafanaError, match="401"):
        grafana.check(server.url, "wrong-token")


def test_basic_auth_is_sent(server: FakeGrafana) -> None:
    with pytest.raises(grafana.GrafanaError, match="401"):
        grafana.check(server.url, basic_auth=("admin", "secret"))
    assert server.requests[0]["headers"]["Authorization"].startswith("Basic ")


def test_connection_refused_is_a_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(grafana.GrafanaError, match="cannot connect") as e:
        grafana.check(f"http://127.0.0.1:{port}", TOKEN, timeout=2.0)
    assert "\n" not in str(e.value)


def test_differences_paths() -> None:
    want = {"a": [1, {"b": 2}], "c": 1}
    got = {"a": [1, {"b": 3}, 4], "d": 1}
    diffs = list(grafana.differences(want, got, "x"))
    assert "x.a: 2 items in the file, 3 in Grafana" in diffs
    assert "x.a[1].b: file has 2, Grafana has 3" in diffs
    assert "x.c: missing in Grafana" in diffs
    assert "x.d: only in Grafana" in diffs
