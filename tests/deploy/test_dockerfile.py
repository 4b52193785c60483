"""deploy/Dockerfile and .dockerignore are true to pyproject.toml and to docker-compose.yml."""

from __future__ import annotations

import importlib
import re
import tomllib
from typing import Any

import pytest

from tests.deploy.compose import (
    ROOT,
    Instruction,
    app_services,
    dockerfile,
    dockerfile_path,
    exec_form,
    final_stage,
    image_entrypoint,
    load,
)

COMPOSE = load()
DOCKERFILE = dockerfile_path(COMPOSE)
INSTRUCTIONS = dockerfile(DOCKERFILE)
FINAL = final_stage(INSTRUCTIONS)


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def _all(keyword: str, stage: list[Instruction] = INSTRUCTIONS) -> list[str]:
    return [ins.args for ins in stage if ins.keyword == keyword]


def test_compose_builds_this_dockerfile_from_the_repository_root() -> None:
    assert DOCKERFILE.resolve() == ROOT / "deploy" / "Dockerfile"
    for service in app_services(COMPOSE):
        assert COMPOSE.services[service]["build"]["context"] == ".", service


def test_entrypoint_is_the_console_script() -> None:
    scripts = _pyproject()["project"]["scripts"]
    assert image_entrypoint(COMPOSE) == ["vardgaranti"]
    assert "vardgaranti" in scripts
    module, _, func = scripts["vardgaranti"].partition(":")
    assert callable(getattr(importlib.import_module(module), func))
    assert exec_form(_all("CMD", FINAL)[-1]) == ["--help"]


def test_runtime_is_python_3_11_slim_and_not_root() -> None:
    assert FINAL[0].args == "python:3.11-slim"
    assert _pyproject()["project"]["requires-python"] == ">=3.11"
    users = _all("USER", FINAL)
    assert users, "the image must switch to a non-root user"
    assert users[-1] not in {"root", "0", "0:0"}
    created = " ".join(_all("RUN", FINAL))
    assert re.search(rf"useradd\b.*\b{re.escape(users[-1])}\b", created)


def test_build_copies_every_package_of_the_distribution() -> None:
    includes = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    copied = {args.split()[0].rstrip("/") for args in _all("COPY")
              if not args.startswith("--")}
    missing = packages - copied
    assert not missing, f"deploy/Dockerfile does not copy {sorted(missing)}"
    # setuptools needs the readme named in pyproject.toml
    assert _pyproject()["project"]["readme"] in " ".join(_all("COPY"))


def test_no_dev_extras_in_the_image() -> None:
    for args in _all("RUN"):
        if "pip" in args:
            assert "[dev]" not in args and ".[" not in args, args


def test_app_volumes_are_owned_by_the_app_user() -> None:
    # a named volume takes the owner of the image's folder it is mounted on
    runs = " ".join(_all("RUN", FINAL))
    user = _all("USER", FINAL)[-1]
    for service in app_services(COMPOSE):
        for m in COMPOSE.mounts(service):
            if m.type == "volume":
                assert re.search(rf"install -d -o {user} -g {user}\b[^&]*\s{m.target}\b", runs), (
                    f"{service}: {m.target} is not created for {user} in the image")


@pytest.mark.parametrize("path", [".env", ".venv/bin/python", ".git/HEAD", "vardgaranti.db",
                                  "models/__pycache__/x.pyc", ".cache/demo/year.jsonl.gz",
                                  "benchmarks/results/latest.json"])
def test_dockerignore_keeps_secrets_and_clutter_out(path: str) -> None:
    assert _ignored(path), f".dockerignore lets {path} into the build context"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    sources = [args.split()[0] for args in _all("COPY") if not args.startswith("--")]
    assert sources
    for source in sources:
        assert not _ignored(source.rstrip("/")), f".dockerignore drops {source}"
    assert not _ignored("vardgaranti/examples/example.jsonl")
    assert not _ignored("dashboards/vardgaranti-overview.json")


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers what is below it."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, p) for p in prefixes):
            ignored = not negate
    return ignored
