"""docker-compose.yml and deploy/Dockerfile read the way Compose and Docker read them, far
enough to check them against the code without a Docker engine.

Compose interpolates `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
`${VAR?message}`, `${VAR:+alt}` and `$$` in values (not keys) after YAML anchors and merge
keys are resolved; :func:`interpolate` does the same.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from models.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
KAFKA_HOST_OVERRIDE = ROOT / "deploy" / "compose.kafka-host.yml"
DEPLOY_README = ROOT / "deploy" / "README.md"

#: The variables a user must put in `.env` (no defaults), with values for the tests.
SECRETS = {
    "POSTGRES_PASSWORD": "test-postgres-secret",
    "GRAFANA_DB_PASSWORD": "test-grafana-db-secret",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-secret",
    "VARDGARANTI_API_TOKEN": "test-api-token",
}

_REF = re.compile(r"\$(?:(?P<dollar>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)
_SEPARATORS = {"&&", "||", ";", "|"}


class MissingVariable(Exception):
    """A `${VAR:?message}` whose variable is unset or empty (Compose refuses to start)."""


@dataclass(frozen=True)
class Reference:
    name: str
    op: str | None  # None, "-", ":-", "?", ":?", "+", ":+"
    arg: str


def references(node: Any) -> Iterator[Reference]:
    """Every variable reference in the values of a raw (uninterpolated) document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)
    elif isinstance(node, str):
        for m in _REF.finditer(node):
            if m["plain"]:
                yield Reference(m["plain"], None, "")
            elif m["braced"] is not None:
                b = _BRACED.fullmatch(m["braced"])
                if b is None:
                    raise ValueError(f"bad interpolation ${{{m['braced']}}} in {node!r}")
                yield Reference(b["name"], b["op"], b["arg"] or "")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m["dollar"]:
            return "$"
        if m["plain"]:
            return env.get(m["plain"], "")
        b = _BRACED.fullmatch(m["braced"])
        if b is None:
            raise ValueError(f"bad interpolation ${{{m['braced']}}}")
        name, op, arg = b["name"], b["op"], b["arg"] or ""
        value = env.get(name)
        if op is None:
            return value or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("?"):
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return str(value)
        return "" if unset else arg  # "+"

    return _REF.sub(one, text)


def resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


@dataclass(frozen=True)
class Port:
    host_ip: str  # "" = every interface
    published: str
    target: int


@dataclass(frozen=True)
class Mount:
    type: str  # "bind" | "volume"
    source: str
    target: str
    read_only: bool


class Compose:
    """A compose file: `raw` as written (variables kept), `model` interpolated with `env`."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.model: dict[str, Any] = resolve(copy.deepcopy(self.raw), env)
        self.services: dict[str, dict[str, Any]] = self.model["services"]

    def env(self, service: str) -> dict[str, str]:
        environment = self.services[service].get("environment") or {}
        if isinstance(environment, list):
            pairs = (item.split("=", 1) for item in environment)
            return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}
        return {k: "" if v is None else str(v) for k, v in environment.items()}

    def raw_env(self, service: str) -> dict[str, str]:
        environment = self.raw["services"][service].get("environment") or {}
        assert isinstance(environment, dict), f"{service}: write environment as a mapping"
        return {k: str(v) for k, v in environment.items()}

    def ports(self, service: str) -> list[Port]:
        out = []
        for spec in self.services[service].get("ports") or []:
            if isinstance(spec, dict):
                out.append(Port(str(spec.get("host_ip", "")), str(spec.get("published", "")),
                                int(spec["target"])))
                continue
            parts = str(spec).split("/")[0].split(":")
            if len(parts) == 1:
                out.append(Port("", "", int(parts[0])))
            elif len(parts) == 2:
                out.append(Port("", parts[0], int(parts[1])))
            else:
                out.append(Port(":".join(parts[:-2]), parts[-2], int(parts[-1])))
        return out

    def mounts(self, service: str) -> list[Mount]:
        out = []
        for spec in self.services[service].get("volumes") or []:
            if isinstance(spec, dict):
                out.append(Mount(spec["type"], str(spec.get("source", "")), spec["target"],
                                 bool(spec.get("read_only", False))))
                continue
            parts = str(spec).split(":")
            source, target = parts[0], parts[1]
            mode = parts[2] if len(parts) > 2 else "rw"
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            out.append(Mount(kind, source, target, "ro" in mode.split(",")))
        return out

    def host_path(self, service: str, container_path: str) -> Path | None:
        """The repository file or folder a bind mount shows at `container_path`."""
        best: Mount | None = None
        for m in self.mounts(service):
            inside = container_path == m.target or container_path.startswith(m.target + "/")
            if m.type == "bind" and inside and (best is None or len(m.target) > len(best.target)):
                best = m
        if best is None:
            return None
        rest = container_path[len(best.target):].lstrip("/")
        return (self.path.parent / best.source / rest).resolve()

    def depends_on(self, service: str) -> dict[str, str]:
        deps = self.services[service].get("depends_on") or {}
        if isinstance(deps, list):
            return dict.fromkeys(deps, "service_started")
        return {name: (spec or {}).get("condition", "service_started")
                for name, spec in deps.items()}


def load(env: Mapping[str, str] = SECRETS, path: Path = COMPOSE_FILE) -> Compose:
    return Compose(path, env)


# ---------------------------------------------------------------- the app's image


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_path(compose: Compose) -> Path:
    build = compose.services[app_services(compose)[0]]["build"]
    return compose.path.parent / str(build.get("context", ".")) / str(build["dockerfile"])


def dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1]:]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec (JSON) form: {args}"
    return [str(v) for v in value]


def app_services(compose: Compose) -> list[str]:
    """Services running the project's own image (those with a `build`)."""
    return [name for name, s in compose.services.items() if "build" in s]


def image_entrypoint(compose: Compose) -> list[str]:
    for ins in reversed(final_stage(dockerfile(dockerfile_path(compose)))):
        if ins.keyword == "ENTRYPOINT":
            return exec_form(ins.args)
    return []


def invocations(compose: Compose, service: str) -> list[list[str]]:
    """The `vardgaranti …` argument lists a service runs (after the program name).

    A `sh -c SCRIPT` entrypoint is split into its commands (on `&&`, `||`, `;`, `|`).
    """
    s = compose.services[service]
    entrypoint = s.get("entrypoint", image_entrypoint(compose))
    entrypoint = shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)
    command = s.get("command", [])
    command = shlex.split(command) if isinstance(command, str) else list(command)
    argv = [*entrypoint, *command]
    if argv[:2] == ["sh", "-c"]:
        lexer = shlex.shlex(" ".join(argv[2:3]), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in _SEPARATORS:
                commands.append([])
            else:
                commands[-1].append(token)
        return [c[1:] for c in commands if c and c[0] == "vardgaranti"]
    if argv and argv[0] == "vardgaranti":
        return [argv[1:]]
    return []


# ---------------------------------------------------------------- settings


class _ComposeSettings(Settings):
    """Settings from the values given and nothing else (not the test process' environment)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_of(compose: Compose, service: str) -> Settings:
    """The settings a container gets from exactly its compose environment."""
    env = compose.env(service)
    values = {k.removeprefix("VARDGARANTI_").lower(): v
              for k, v in env.items() if k.startswith("VARDGARANTI_")}
    return _ComposeSettings.model_validate(values)


def http_port(compose: Compose, service: str) -> int | None:
    """The port an app service's HTTP server listens on, from its settings."""
    runs = [argv[0] for argv in invocations(compose, service) if argv]
    settings = settings_of(compose, service)
    if "worker" in runs:
        return settings.http_port
    if "sink" in runs:
        return settings.sink_port
    return None
