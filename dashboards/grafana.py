"""Push the checked-in dashboards to Grafana, or check that the deployed ones match.

Uses grafana-client (`GrafanaApi`). Grafana-managed fields (`id`, `version`) are ignored
when comparing. Every failure surfaces as `GrafanaError` with a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, cast

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from dashboards.build import DASHBOARD_DIR

DEFAULT_FOLDER: Final = "vardgaranti"
FOLDER_TITLE: Final = "Vårdgaranti"
MANAGED_FIELDS: Final = frozenset({"id", "version"})
MAX_DIFFERENCES: Final = 20

Json = dict[str, Any]


class GrafanaError(Exception):
    """A Grafana operation failed; str() is a one-line message for the user."""


def load_dashboards(directory: Path | str = DASHBOARD_DIR) -> list[Json]:
    """The dashboards checked in under `directory` (`*.json`), sorted by file name."""
    out = []
    for p in sorted(Path(directory).glob("*.json")):
        board = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(board, dict) or "uid" not in board:
            raise GrafanaError(f"{p}: not a dashboard (no uid)")
        out.append(cast(Json, board))
    return out


def _connect(url: str, token: str | None, basic_auth: tuple[str, str] | None,
             timeout: float) -> Any:
    if token is not None and basic_auth is not None:
        raise GrafanaError("give either a token or basic auth, not both")
    credential: str | tuple[str, str] | None = token if token is not None else basic_auth
    try:
        return GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    except (ValueError, TypeError) as e:
        raise GrafanaError(f"invalid Grafana URL {url!r}: {e}") from e


def _call(url: str, what: str, fn: Any, *args: Any, missing_ok: bool = False) -> Any:
    """Run one API call, turning every client failure into a one-line GrafanaError.

    With `missing_ok`, a 404 returns None instead.
    """
    try:
        return fn(*args)
    except GrafanaUnauthorizedError as e:
        raise GrafanaError(f"Grafana at {url} rejected the credentials (401) on {what}") from e
    except GrafanaClientError as e:
        if missing_ok and e.status_code == 404:
            return None
        raise GrafanaError(
            f"Grafana at {url} refused {what}: {e.status_code} {_one_line(e.message)}"
        ) from e
    except GrafanaException as e:
        raise GrafanaError(f"Grafana at {url} failed on {what}: {_one_line(e.message)}") from e
    except OSError as e:  # niquests' ConnectionError and friends
        raise GrafanaError(f"cannot connect to Grafana at {url}: {_one_line(str(e))}") from e


def _one_line(text: object) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= 200 else s[:197] + "..."


def _ensure_folder(api: Any, url: str, folder: str) -> None:
    if _call(url, f"folder {folder}", api.folder.get_folder, folder, missing_ok=True) is None:
        _call(url, f"creating folder {folder}", api.folder.create_folder, FOLDER_TITLE, folder)


def push(url: str, token: str | None = None, basic_auth: tuple[str, str] | None = None,
         folder: str | None = DEFAULT_FOLDER, *, directory: Path | str = DASHBOARD_DIR,
         timeout: float = 10.0) -> list[str]:
    """Create or overwrite every checked-in dashboard; returns the uids pushed.

    `folder` is the uid of the Grafana folder (created if missing); None = General.
    """
    api = _connect(url, token, basic_auth, timeout)
    boards = load_dashboards(directory)
    if folder is not None:
        _ensure_folder(api, url, folder)
    pushed = []
    for board in boards:
        payload: Json = {
            "dashboard": {k: v for k, v in board.items() if k not in MANAGED_FIELDS},
            "message": "vardgaranti dashboards push",
            "overwrite": True,
        }
        if folder is not None:
            payload["folderUid"] = folder
        _call(url, f"dashboard {board['uid']}", api.dashboard.update_dashboard, payload)
        pushed.append(str(board["uid"]))
    return pushed


def check(url: str, token: str | None = None, basic_auth: tuple[str, str] | None = None,
          *, directory: Path | str = DASHBOARD_DIR, timeout: float = 10.0) -> list[str]:
    """Differences between the checked-in dashboards and Grafana's; empty = all match."""
    api = _connect(url, token, basic_auth, timeout)
    diffs: list[str] = []
    for board in load_dashboards(directory):
        uid = str(board["uid"])
        got = _call(url, f"dashboard {uid}", api.dashboard.get_dashboard, uid, missing_ok=True)
        if got is None:
            diffs.append(f"{uid}: missing in Grafana")
            continue
        deployed = got.get("dashboard") if isinstance(got, dict) else None
        if not isinstance(deployed, dict):
            diffs.append(f"{uid}: Grafana returned no dashboard")
            continue
        found = list(differences(_strip(board), _strip(deployed), uid))
        if len(found) > MAX_DIFFERENCES:
            found = [*found[:MAX_DIFFERENCES],
                     f"{uid}: ... and {len(found) - MAX_DIFFERENCES} more"]
        diffs += found
    return diffs


def _strip(board: Json) -> Json:
    return {k: v for k, v in board.items() if k not in MANAGED_FIELDS}


def differences(want: Any, got: Any, path: str) -> Iterator[str]:
    """Paths where `got` differs from `want` (recursively through dicts and lists)."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got), key=str):
            if k not in got:
                yield f"{path}.{k}: missing in Grafana"
            elif k not in want:
                yield f"{path}.{k}: only in Grafana"
            else:
                yield from differences(want[k], got[k], f"{path}.{k}")
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            yield f"{path}: {len(want)} items in the file, {len(got)} in Grafana"
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            yield from differences(w, g, f"{path}[{i}]")
    elif want != got or type(want) is not type(got):
        yield f"{path}: file has {_short(want)}, Grafana has {_short(got)}"


def _short(v: Any) -> str:
    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 80 else s[:77] + "..."
