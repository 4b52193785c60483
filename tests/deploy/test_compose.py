"""docker-compose.yml is true to the code, although no Docker engine runs here.

The app's commands parse with the real CLI parser, its `VARDGARANTI_*` variables are fields of
the settings model, mounted files exist, Grafana and Prometheus find what they are configured
to find, and the stack publishes nothing beyond 127.0.0.1 except what deploy/README.md lists.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from consumers.sqlviews import READABLE, READER_ROLE, VIEW
from models.settings import Settings
from tests.deploy.compose import (
    DEPLOY_README,
    KAFKA_HOST_OVERRIDE,
    ROOT,
    SECRETS,
    Compose,
    MissingVariable,
    app_services,
    http_port,
    invocations,
    load,
    references,
    settings_of,
)
from vardgaranti import cli

SERVICES = {"kafka", "topics", "worker", "sink", "postgres", "prometheus", "alertmanager",
            "grafana", "replay"}
#: Where each third-party image listens unless its command says otherwise.
IMAGE_PORTS = {"prom/prometheus": 9090, "prom/alertmanager": 9093, "grafana/grafana": 3000,
               "postgres": 5432}
#: (service, container port) published on the host; each is documented in deploy/README.md.
PUBLISHED = {("grafana", 3000), ("prometheus", 9090), ("alertmanager", 9093), ("worker", 8000)}
NEVER_PUBLISHED = {"kafka", "postgres", "sink", "topics", "replay"}
#: The subcommands the stack runs, and what adds them if the parser lacks one.
STREAMING_COMMANDS = {"topics", "worker", "sink"}

COMPOSE = load()


@pytest.fixture(scope="module")
def compose() -> Compose:
    return COMPOSE


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("vardgaranti.cli has no subcommands")


def _listening_ports(compose: Compose, service: str) -> set[int]:
    s = compose.services[service]
    if "build" in s:
        port = http_port(compose, service)
        return set() if port is None else {port}
    if service == "kafka":
        listeners = compose.env("kafka")["KAFKA_LISTENERS"].split(",")
        return {int(item.rsplit(":", 1)[1]) for item in listeners}
    for arg in s.get("command") or []:
        if str(arg).startswith("--web.listen-address="):
            return {int(str(arg).rsplit(":", 1)[1])}
    return {IMAGE_PORTS[s["image"].split(":")[0]]}


def _kafka_listeners(compose: Compose, variable: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in compose.env("kafka")[variable].split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


# ---------------------------------------------------------------- variables and secrets


def test_services_are_the_stack(compose: Compose) -> None:
    assert set(compose.services) == SERVICES
    assert set(compose.model) <= {"services", "volumes"} | {k for k in compose.model
                                                           if k.startswith("x-")}


def test_the_secrets_are_required_and_documented(compose: Compose) -> None:
    required = {r.name for r in references(compose.raw) if r.op in {"?", ":?"}}
    assert required == set(SECRETS)
    readme = DEPLOY_README.read_text(encoding="utf-8")
    for name in required:
        assert name in readme, f"deploy/README.md does not tell users to set {name}"
        env = {k: v for k, v in SECRETS.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            load(env)
        with pytest.raises(MissingVariable, match=name):
            load({**env, name: ""})


def test_every_other_variable_has_a_default(compose: Compose) -> None:
    for ref in references(compose.raw):
        if ref.name not in SECRETS:
            assert ref.op in {"-", ":-"} and ref.arg, f"${{{ref.name}}} has no default"


def test_passwords_come_only_from_the_secrets(compose: Compose) -> None:
    password_vars = {"POSTGRES_PASSWORD": "POSTGRES_PASSWORD", "PGPASSWORD": "POSTGRES_PASSWORD",
                     "GRAFANA_DB_PASSWORD": "GRAFANA_DB_PASSWORD",
                     "GF_SECURITY_ADMIN_PASSWORD": "GRAFANA_ADMIN_PASSWORD",
                     "VARDGARANTI_API_TOKEN": "VARDGARANTI_API_TOKEN"}
    seen = set()
    for service in compose.services:
        for key, value in compose.raw_env(service).items():
            if key in password_vars:
                secret = password_vars[key]
                assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]*\}}", value), (
                    f"{service}: {key} must be ${{{secret}:?…}} (required, no default), "
                    f"not {value!r}")
                seen.add((service, key))
    assert {("postgres", "POSTGRES_PASSWORD"), ("postgres", "GRAFANA_DB_PASSWORD"),
            ("grafana", "GRAFANA_DB_PASSWORD"), ("sink", "PGPASSWORD"),
            ("grafana", "GF_SECURITY_ADMIN_PASSWORD"), ("worker", "VARDGARANTI_API_TOKEN")} <= seen


def test_grafana_admin_password_is_never_the_default(compose: Compose) -> None:
    env = compose.env("grafana")
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["GRAFANA_ADMIN_PASSWORD"]
    assert "admin" not in {v for k, v in env.items() if "PASSWORD" in k}
    assert env.get("GF_AUTH_ANONYMOUS_ENABLED") == "false"
    assert env.get("GF_USERS_ALLOW_SIGN_UP") == "false"


def test_no_database_url_carries_a_password(compose: Compose) -> None:
    for service in compose.services:
        for key, value in compose.env(service).items():
            if key.endswith("DATABASE_URL"):
                assert make_url(value).password is None, f"{service}: password in {key}"


def test_the_worker_reads_back_from_the_sinks_store(compose: Compose) -> None:
    """Final cases leave the worker's memory only once the store holds them: the worker
    must open the store the sink writes, not a file of its own (docs/live-view.md)."""
    url = compose.env("sink")["VARDGARANTI_DATABASE_URL"]
    assert compose.env("worker").get("VARDGARANTI_DATABASE_URL") == url
    assert compose.env("worker").get("PGPASSWORD") == compose.env("sink")["PGPASSWORD"]
    assert compose.depends_on("worker").get("postgres") == "service_healthy"


# ---------------------------------------------------------------- the app's commands


CALLS = [(service, argv) for service in app_services(COMPOSE)
         for argv in invocations(COMPOSE, service)]


def test_every_app_service_runs_vardgaranti(compose: Compose) -> None:
    ran = {service for service, _ in CALLS}
    assert ran == set(app_services(compose)) == {"topics", "worker", "sink", "replay"}


@pytest.mark.parametrize(("service", "argv"), CALLS,
                         ids=[f"{s}:{' '.join(a[:2])}" for s, a in CALLS])
def test_app_command_is_a_cli_subcommand(
    service: str, argv: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the files named here live in the container, not in the checkout
    monkeypatch.setattr(cli, "_existing", Path, raising=False)
    parser = cli.build_parser()
    sub = argv[0]
    if sub not in _subcommands(parser):
        hint = (" The streaming mode (issue 4) adds it to vardgaranti/cli.py."
                if sub in STREAMING_COMMANDS else "")
        pytest.fail(f"{service}: `vardgaranti {sub}` is not a subcommand of vardgaranti.cli."
                    + hint)
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{service}: `vardgaranti {' '.join(argv)}` does not parse: "
                    f"{capsys.readouterr().err.strip()}")
    assert args.command == sub


@pytest.mark.parametrize("service", app_services(COMPOSE))
def test_app_variables_are_settings(compose: Compose, service: str) -> None:
    env = compose.env(service)
    unknown = sorted(k for k in env if k.startswith("VARDGARANTI_")
                     and k.removeprefix("VARDGARANTI_").lower() not in Settings.model_fields)
    assert not unknown, f"{service}: not fields of models.settings.Settings: {unknown}"
    try:
        settings_of(compose, service)
    except ValidationError as exc:
        pytest.fail(f"{service}: bad settings: {exc}")


def test_app_services_share_one_image(compose: Compose) -> None:
    specs = {(compose.services[s]["image"], repr(compose.services[s]["build"]))
             for s in app_services(compose)}
    assert len(specs) == 1
    for service in app_services(compose):
        assert compose.env(service).get("VARDGARANTI_KAFKA_BOOTSTRAP"), service


def test_app_services_reach_kafka_on_its_advertised_listener(compose: Compose) -> None:
    host, port = _kafka_listeners(compose, "KAFKA_ADVERTISED_LISTENERS")[
        compose.env("kafka")["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert host == "kafka" and "kafka" in compose.services
    for service in app_services(compose):
        assert settings_of(compose, service).kafka_bootstrap == f"{host}:{port}", service
        deps = compose.depends_on(service)
        assert deps.get("kafka") == "service_healthy" or (
            deps.get("topics") == "service_completed_successfully"), (
            f"{service} may start before Kafka is up")
    for service, argv in CALLS:
        if "--to-kafka" in argv:
            assert argv[argv.index("--to-kafka") + 1] == f"{host}:{port}", service


def test_replay_publishes_the_year_it_generated(compose: Compose) -> None:
    calls = invocations(compose, "replay")
    assert [argv[0] for argv in calls] == ["generate", "replay"]
    generate, replay = calls
    out = generate[generate.index("--out") + 1]
    assert out in replay[1:replay.index("--to-kafka")], "replay must publish the generated file"
    volume_targets = {m.target for m in compose.mounts("replay") if m.type == "volume"}
    assert str(Path(out).parent) in volume_targets, "the generated year must be on a volume"
    assert compose.services["replay"].get("profiles") == ["tools"]
    assert compose.services["replay"].get("restart") == "no"


def test_sink_writes_the_compose_postgres(compose: Compose) -> None:
    url = make_url(settings_of(compose, "sink").database_url)
    pg = compose.env("postgres")
    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres" and (url.port or 5432) in _listening_ports(compose, "postgres")
    assert url.username == pg["POSTGRES_USER"] and url.database == pg["POSTGRES_DB"]
    assert compose.env("sink")["PGPASSWORD"] == pg["POSTGRES_PASSWORD"]


# ---------------------------------------------------------------- Kafka


def test_kafka_is_one_kraft_broker(compose: Compose) -> None:
    env = compose.env("kafka")
    assert compose.services["kafka"]["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["CLUSTER_ID"], "the image formats its storage with CLUSTER_ID"
    listeners = _kafka_listeners(compose, "KAFKA_LISTENERS")
    advertised = _kafka_listeners(compose, "KAFKA_ADVERTISED_LISTENERS")
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) <= set(protocols) and controller in listeners
    assert set(advertised) == set(listeners) - {controller}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"{name} listens on another port than it advertises"
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{env['KAFKA_NODE_ID']}@kafka:{listeners[controller][1]}"], (
        "the one voter is this node on its controller listener")
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[key] == "1", f"{key}: one broker"
    log_dir = env["KAFKA_LOG_DIRS"]
    assert any(m.type == "volume" and m.target == log_dir for m in compose.mounts("kafka"))
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_host_override_publishes_the_external_listener_on_loopback(
    compose: Compose,
) -> None:
    override = yaml.safe_load(KAFKA_HOST_OVERRIDE.read_text(encoding="utf-8"))
    assert set(override["services"]) == {"kafka"}
    assert set(override["services"]["kafka"]) == {"ports"}
    host, port = _kafka_listeners(compose, "KAFKA_ADVERTISED_LISTENERS")["EXTERNAL"]
    ports = load(path=KAFKA_HOST_OVERRIDE).ports("kafka")
    assert [(p.host_ip, p.published, p.target) for p in ports] == [(host, str(port), port)]
    assert host == "127.0.0.1"
    readme = DEPLOY_README.read_text(encoding="utf-8")
    assert f"VARDGARANTI_TEST_KAFKA_BOOTSTRAP={host}:{port}" in readme


# ---------------------------------------------------------------- files, volumes, ports


def test_bind_mounts_are_files_of_the_repository(compose: Compose) -> None:
    binds = [(s, m) for s in compose.services for m in compose.mounts(s) if m.type == "bind"]
    assert binds
    for service, m in binds:
        assert m.source.startswith("./"), f"{service}: {m.source} is not repository-relative"
        assert (ROOT / m.source).exists(), f"{service}: {m.source} does not exist"
        assert m.read_only, f"{service}: mount {m.source} read-only"


def test_named_volumes_are_declared_and_used(compose: Compose) -> None:
    used = {m.source for s in compose.services for m in compose.mounts(s) if m.type == "volume"}
    assert used == set(compose.model.get("volumes") or {}), "named volumes: used vs declared"


def test_published_ports_are_loopback_only_and_documented(compose: Compose) -> None:
    readme = DEPLOY_README.read_text(encoding="utf-8")
    published = set()
    for service in compose.services:
        for p in compose.ports(service):
            assert p.host_ip == "127.0.0.1", f"{service}: port {p.target} beyond 127.0.0.1"
            assert p.published, f"{service}: port {p.target} on a random host port"
            assert p.target in _listening_ports(compose, service), (
                f"{service} does not listen on {p.target}")
            assert f"127.0.0.1:{p.published}" in readme, (
                f"deploy/README.md does not say that {service} is on 127.0.0.1:{p.published}")
            published.add((service, p.target))
    assert published == PUBLISHED
    assert not {s for s, _ in published} & NEVER_PUBLISHED


def test_worker_is_not_published_where_prometheus_scrapes_the_demo(compose: Compose) -> None:
    # Prometheus scrapes `vardgaranti demo` at host.docker.internal:8000; the worker on that
    # host port would be scraped twice (every sum doubled) and block the demo's port.
    demo_ports = {t.rsplit(":", 1)[1] for t in _scrape_targets() if "host.docker" in t}
    assert demo_ports
    for service in compose.services:
        assert not {p.published for p in compose.ports(service)} & demo_ports, service


# ---------------------------------------------------------------- health and start order


def _one_shot(compose: Compose, service: str) -> bool:
    return compose.services[service].get("restart") == "no"


def test_long_running_services_have_healthchecks(compose: Compose) -> None:
    for service, s in compose.services.items():
        if _one_shot(compose, service):
            continue
        assert s.get("restart") == "unless-stopped", service
        test = (s.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"] and not (s["healthcheck"].get("disable")), (
            f"{service} has no healthcheck")


@pytest.mark.parametrize("service", ["worker", "sink"])
def test_app_probes_ask_the_port_the_app_listens_on(compose: Compose, service: str) -> None:
    test = compose.services[service]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], "the slim image has no curl: probe with python"
    urls = re.findall(r"http://[^'\"]+", test[3])
    assert len(urls) == 1
    url = urlsplit(urls[0])
    settings = settings_of(compose, service)
    assert url.port == http_port(compose, service), (
        f"{service} probes port {url.port} but listens on {http_port(compose, service)}")
    assert url.hostname == "127.0.0.1" and url.path in {"/healthz", "/readyz"}
    # reachable from Prometheus and the host: bound to every interface in the container
    assert settings.http_host == "0.0.0.0"


def test_depends_on_waits_for_the_right_state(compose: Compose) -> None:
    for service in compose.services:
        for dep, condition in compose.depends_on(service).items():
            assert dep in compose.services, f"{service} depends on unknown {dep}"
            if _one_shot(compose, dep):
                assert condition == "service_completed_successfully", f"{service} -> {dep}"
            elif dep in {"kafka", "postgres", "worker", "prometheus"}:
                assert condition == "service_healthy", f"{service} -> {dep}"
                assert compose.services[dep].get("healthcheck"), dep
    for service in ("worker", "sink"):
        assert compose.depends_on(service).get("topics") == "service_completed_successfully"
    assert compose.depends_on("sink").get("postgres") == "service_healthy"


# ---------------------------------------------------------------- Prometheus


def _prometheus_config() -> dict[str, Any]:
    path = COMPOSE.host_path("prometheus", _flag(COMPOSE, "prometheus", "--config.file"))
    assert path is not None and path.is_file()
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return config


def _scrape_targets() -> list[str]:
    return [t for job in _prometheus_config()["scrape_configs"]
            for sc in job.get("static_configs", []) for t in sc["targets"]]


def _flag(compose: Compose, service: str, flag: str) -> str:
    for arg in compose.services[service].get("command") or []:
        if str(arg).startswith(flag + "="):
            return str(arg).split("=", 1)[1]
    raise AssertionError(f"{service}: no {flag}")


def test_prometheus_reads_the_repository_config(compose: Compose) -> None:
    path = compose.host_path("prometheus", _flag(compose, "prometheus", "--config.file"))
    assert path == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    config = _prometheus_config()
    for pattern in config["rule_files"]:
        assert sorted(path.parent.glob(pattern)), f"rule_files {pattern} matches nothing"
    storage = _flag(compose, "prometheus", "--storage.tsdb.path")
    assert any(m.type == "volume" and m.target == storage for m in compose.mounts("prometheus"))
    am = compose.host_path("alertmanager", _flag(compose, "alertmanager", "--config.file"))
    assert am == ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_prometheus_sees_a_backfilled_daily_sample_until_the_next_one(
        compose: Compose) -> None:
    from benchmarks.alerts import LOOKBACK

    assert _flag(compose, "prometheus", "--query.lookback-delta") == LOOKBACK == "25h"


def test_prometheus_targets_are_services_on_their_ports(compose: Compose) -> None:
    config = _prometheus_config()
    targets = _scrape_targets() + [
        t for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"] for t in sc["targets"]]
    assert {"worker:8000", "sink:8001", "alertmanager:9093"} <= set(targets)
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            assert int(port) in _listening_ports(compose, "prometheus")
        elif host == "host.docker.internal":
            assert "host.docker.internal:host-gateway" in compose.services["prometheus"][
                "extra_hosts"]
        else:
            assert host in compose.services, f"scrape target {target}: no such service"
            assert int(port) in _listening_ports(compose, host), (
                f"scrape target {target}: {host} does not listen on {port}")


# ---------------------------------------------------------------- Grafana


def _provisioning(compose: Compose, kind: str) -> list[dict[str, Any]]:
    root = compose.env("grafana").get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
    folder = compose.host_path("grafana", f"{root}/{kind}")
    assert folder is not None and folder.is_dir(), f"nothing mounted at {root}/{kind}"
    assert folder == ROOT / "deploy" / "grafana" / "provisioning" / kind
    files = sorted(folder.glob("*.y*ml"))
    assert files
    return [yaml.safe_load(f.read_text(encoding="utf-8")) for f in files]


def test_grafana_dashboard_provider_path_is_the_mounted_dashboards(compose: Compose) -> None:
    providers = [p for doc in _provisioning(compose, "dashboards") for p in doc["providers"]]
    assert providers
    for provider in providers:
        folder = compose.host_path("grafana", provider["options"]["path"])
        assert folder == ROOT / "dashboards", (
            f"Grafana reads {provider['options']['path']}, where dashboards/ is not mounted")
        boards = sorted(folder.glob("*.json"))
        assert len(boards) >= 4, f"{folder} holds no dashboards"
    home = compose.env("grafana").get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        path = compose.host_path("grafana", home)
        assert path is not None and path.is_file(), f"home dashboard {home} is not mounted"


def test_grafana_datasources_point_at_services(compose: Compose) -> None:
    sources = [d for doc in _provisioning(compose, "datasources") for d in doc["datasources"]]
    assert {d["uid"] for d in sources} >= {"prometheus", "postgres"}
    grafana_env = compose.env("grafana")
    for d in sources:
        url = d["url"] if "://" in d["url"] else f"tcp://{d['url']}"
        host, port = urlsplit(url).hostname, urlsplit(url).port
        assert host in compose.services, f"data source {d['name']}: no service {host}"
        assert port in _listening_ports(compose, str(host)), f"data source {d['name']}: port"
        for value in (d.get("secureJsonData") or {}).values():
            for name in re.findall(r"\$__env\{(\w+)\}", str(value)):
                assert grafana_env.get(name), f"grafana has no {name} for {d['name']}"
        if d["type"] == "grafana-postgresql-datasource":
            pg = compose.env(str(host))
            assert d["user"] == READER_ROLE, "Grafana reads as the read-only role"
            assert d["jsonData"]["database"] == pg["POSTGRES_DB"]
            assert d["secureJsonData"]["password"] == "$__env{GRAFANA_DB_PASSWORD}"
            assert grafana_env["GRAFANA_DB_PASSWORD"] == pg["GRAFANA_DB_PASSWORD"]
            assert "POSTGRES_PASSWORD" not in grafana_env, "the owner's password in Grafana"


def test_postgres_creates_the_read_only_role_grafana_uses(compose: Compose) -> None:
    """The init script, mounted where the image runs it on the first start, makes the role
    the data source names, read-only, with the password compose hands the two services."""
    mounts = {m.target: m for m in compose.mounts("postgres")}
    init = mounts["/docker-entrypoint-initdb.d"]
    assert init.read_only
    scripts = sorted((ROOT / init.source).glob("*.sh"))
    assert scripts and all(os.access(p, os.X_OK) for p in scripts)
    script = "\n".join(p.read_text() for p in scripts)
    assert f"CREATE ROLE {READER_ROLE} LOGIN PASSWORD :'reader_password'" in script
    assert 'reader_password="$GRAFANA_DB_PASSWORD"' in script
    assert f"ALTER ROLE {READER_ROLE} SET default_transaction_read_only = on" in script
    assert "GRANT SELECT" not in script  # the store grants what the role may read
    assert set(READABLE) == {VIEW, "count_groups", "daily_counts"}
    assert compose.env("postgres")["GRAFANA_DB_PASSWORD"] == SECRETS["GRAFANA_DB_PASSWORD"]


# ---------------------------------------------------------------- Compose itself, if present


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.mark.integration
def test_compose_cli_accepts_the_files(tmp_path: Path) -> None:
    """Not needed (the checks above stand alone), but run when a Compose CLI is installed:
    `config` validates against Compose's schema without an engine."""
    cmd = _compose_cli()
    if cmd is None:
        pytest.skip("no Compose CLI (docker compose / docker-compose); the checks above suffice")
    # an empty env file: a user's .env must not fill in what the test leaves out
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = [*cmd, "--env-file", str(empty)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for files in (["-f", "docker-compose.yml"],
                  ["-f", "docker-compose.yml", "-f", str(KAFKA_HOST_OVERRIDE)]):
        proc = subprocess.run([*base, *files, "config", "-q"], cwd=ROOT, env={**env, **SECRETS},
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([*base, "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert any(name in proc.stdout + proc.stderr for name in SECRETS), proc.stderr
