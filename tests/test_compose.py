"""Static checks of docker-compose.yml, the Dockerfile and .env.example (no Docker needed).

They hold the deployment files to the code: every WIREWATCH_* variable must be a Settings
field, every service command must be one the CLI runs, every ``${VAR}`` must be set or
defaulted, and the servers must be configured the way wirewatch expects (Kafka in KRaft
mode without topic auto-creation, Elasticsearch with security on and no default password).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import make_settings
from wirewatch.core.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

SETTINGS_ENV_NAMES: frozenset[str] = frozenset(f"WIREWATCH_{name.upper()}" for name in Settings.model_fields)
WEB_PORT_DEFAULT: int = Settings.model_fields["web_port"].default
CONDITIONS = frozenset({"service_started", "service_healthy", "service_completed_successfully"})
WIREWATCH_VAR = re.compile(r"\bWIREWATCH_[A-Z0-9_]+")
# `$$` is Compose's escape for a literal `$` (expanded later by the container's shell).
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<modifier>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
ENV_EXAMPLE_LINE = re.compile(r"^\s*(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


# --- parsing helpers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpolation:
    name: str
    modifier: str  # "", "-", ":-", "?", ":?", "+", ":+"
    argument: str

    @property
    def has_default(self) -> bool:
        return self.modifier in {"-", ":-"}

    @property
    def is_required(self) -> bool:
        return self.modifier in {"?", ":?"}


def interpolations(text: str) -> list[Interpolation]:
    found = []
    for match in INTERPOLATION.finditer(text):
        if match["escaped"]:
            continue
        name = match["braced"] or match["bare"]
        found.append(Interpolation(name, match["modifier"] or "", match["argument"] or ""))
    return found


def strings_in(node: Any) -> list[str]:
    """Every string (mapping keys included) in a parsed YAML document: what Compose interpolates."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings_in(key) + strings_in(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return []


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    assert isinstance(env, dict), f"environment must be a mapping or a list, got {env!r}"
    return dict(env)


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def env_example() -> dict[str, tuple[str, bool]]:
    """Name -> (value, is_set) for every ``NAME=value`` line, commented-out ones included."""
    out: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ENV_EXAMPLE_LINE.match(line)
        if match:
            out[match["name"]] = (match["value"].strip(), not match["comment"])
    return out


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions() -> list[Instruction]:
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    out = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        out.append(Instruction(keyword.upper(), arguments.strip()))
    return out


def final_stage_base() -> str:
    """The final FROM image with ARG defaults (declared before the first FROM) substituted."""
    args: dict[str, str] = {}
    base = ""
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ARG" and not base and "=" in instruction.arguments:
            name, value = instruction.arguments.split("=", 1)
            args[name.strip()] = value.strip()
        elif instruction.keyword == "FROM":
            image = instruction.arguments.split()[0]
            for name, value in args.items():
                image = image.replace(f"${{{name}}}", value).replace(f"${name}", value)
            base = image
    return base


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def wirewatch_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services built from this repository's Dockerfile."""
    built = {name: svc for name, svc in services.items() if "build" in svc}
    assert built, "no service builds the wirewatch image"
    return built


@pytest.fixture(scope="module")
def run_services(wirewatch_services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in wirewatch_services.items() if command(svc)[:1] == ["run"]}


# --- images and commands -------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, f"{name}: neither image nor build"
        if "build" in svc:
            build = svc["build"]
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile} does not exist"
        else:
            tag = image_tag(svc["image"])
            assert tag and tag != "latest", f"{name}: pin the image tag ({svc['image']!r})"


def test_wirewatch_services_share_one_image(
    services: dict[str, dict[str, Any]], wirewatch_services: dict[str, dict[str, Any]]
) -> None:
    images = {svc.get("image") for svc in wirewatch_services.values()}
    assert len(images) == 1 and None not in images, f"built services should share one image name: {images}"
    (image,) = images
    others = [name for name, svc in services.items() if "build" not in svc and svc.get("image") == image]
    assert not others, f"{others} use {image} without building it"


def test_wirewatch_commands_are_cli_commands(wirewatch_services: dict[str, dict[str, Any]]) -> None:
    runs: list[str] = []
    setups: list[str] = []
    kibana_imports: list[str] = []
    for name, svc in wirewatch_services.items():
        cmd = command(svc)
        if cmd == ["setup"]:
            setups.append(name)
            continue
        if cmd[:2] == ["kibana", "import"]:
            kibana_imports.append(name)
            continue
        assert len(cmd) == 2 and cmd[0] == "run", (
            f"{name}: command {cmd} is neither `setup`, `kibana import` nor `run X`"
        )
        assert cmd[1] in SERVICES, f"{name}: `run {cmd[1]}` is not one of {SERVICES}"
        assert cmd[1] == name, f"service {name!r} runs {cmd[1]!r}"
        runs.append(cmd[1])
    assert sorted(runs) == sorted(SERVICES), f"every service must run exactly once: {runs}"
    assert setups == ["setup"], f"expected one `setup` job, found {setups}"
    assert kibana_imports == ["kibana-setup"], f"expected one `kibana import` job, found {kibana_imports}"


def test_restart_policies(
    wirewatch_services: dict[str, dict[str, Any]], run_services: dict[str, dict[str, Any]]
) -> None:
    assert wirewatch_services["setup"].get("restart") == "no"  # a quoted "no": bare `no` is false
    for name, svc in run_services.items():
        assert svc.get("restart") == "unless-stopped", name


def test_elastic_stack_versions_match(services: dict[str, dict[str, Any]]) -> None:
    es = services["elasticsearch"]["image"]
    kibana = services["kibana"]["image"]
    assert es.startswith("docker.elastic.co/elasticsearch/elasticsearch:")
    assert kibana.startswith("docker.elastic.co/kibana/kibana:")
    assert image_tag(es).startswith("8."), "the Python client (elasticsearch<9) targets Elasticsearch 8"
    assert image_tag(es) == image_tag(kibana)


# --- environment ------------------------------------------------------------------------------


def test_shared_wirewatch_environment(
    compose: dict[str, Any], wirewatch_services: dict[str, dict[str, Any]]
) -> None:
    shared = compose.get("x-wirewatch-env")
    assert isinstance(shared, dict) and shared, "x-wirewatch-env anchor missing"
    for name, svc in wirewatch_services.items():
        assert environment(svc) == shared, f"{name} does not use the shared environment"
    assert shared["WIREWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert shared["WIREWATCH_ES_URL"] == "http://elasticsearch:9200"
    assert shared["WIREWATCH_ES_USERNAME"] == "elastic"
    assert shared["WIREWATCH_WEB_HOST"] == "0.0.0.0"
    assert shared["WIREWATCH_LOG_FORMAT"] == "json"


@pytest.mark.parametrize("path", [COMPOSE_FILE, ENV_EXAMPLE, DOCKERFILE], ids=lambda p: p.name)
def test_wirewatch_variables_are_settings_fields(path: Path) -> None:
    used = set(WIREWATCH_VAR.findall(path.read_text(encoding="utf-8")))
    assert used, f"{path.name} names no WIREWATCH_ variable"
    unknown = sorted(used - SETTINGS_ENV_NAMES)
    assert not unknown, f"{path.name}: {unknown} are not fields of Settings"


def test_wirewatch_defaults_match_settings(compose: dict[str, Any]) -> None:
    """``${WIREWATCH_X:-value}`` in compose and ``# WIREWATCH_X=value`` in .env.example are the defaults."""
    claimed: list[tuple[str, str, str]] = [
        ("docker-compose.yml", i.name, i.argument)
        for text in strings_in(compose)
        for i in interpolations(text)
        if i.name.startswith("WIREWATCH_") and i.has_default
    ]
    claimed += [
        (".env.example", name, value)
        for name, (value, is_set) in env_example().items()
        if name.startswith("WIREWATCH_") and not is_set
    ]
    assert claimed
    for source, env_name, value in claimed:
        field = env_name.removeprefix("WIREWATCH_").lower()
        override: dict[str, Any] = {field: value}
        parsed = getattr(make_settings(**override), field)
        default = Settings.model_fields[field].default
        assert parsed == default, f"{source}: {env_name}={value!r} but Settings defaults to {default!r}"


def test_environment_values_are_valid_compose_types(services: dict[str, dict[str, Any]]) -> None:
    # Compose rejects booleans here; YAML turns bare true/false/yes/no into booleans.
    for name, svc in services.items():
        for key, value in environment(svc).items():
            assert value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)), (
                f"{name}: {key}={value!r} must be a string or a number (quote it)"
            )


def test_interpolated_variables_are_documented_or_defaulted(compose: dict[str, Any]) -> None:
    documented = env_example()
    used = [i for text in strings_in(compose) for i in interpolations(text)]
    assert used, "the compose file interpolates nothing (passwords should come from .env)"
    for item in used:
        if item.has_default:
            continue
        assert item.name in documented, f"${{{item.name}}} has no default and is not in .env.example"
        value, is_set = documented[item.name]
        assert is_set, f"{item.name} is required but commented out in .env.example"
        if item.is_required:
            assert value == "", f".env.example must not ship a value for {item.name}"


# --- Elasticsearch and Kibana ---------------------------------------------------------------


def test_elasticsearch_security_is_on_without_a_default_password(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    env = environment(services["elasticsearch"])
    assert str(env.get("xpack.security.enabled")).lower() == "true"
    assert env.get("discovery.type") == "single-node"
    assert "-Xmx" in str(env.get("ES_JAVA_OPTS", ""))
    assert re.fullmatch(r"\$\{ELASTIC_PASSWORD:\?[^}]+\}", str(env.get("ELASTIC_PASSWORD"))), (
        "ELASTIC_PASSWORD must use ${ELASTIC_PASSWORD:?message} so it has no default"
    )
    for item in (i for text in strings_in(compose) for i in interpolations(text)):
        if "PASSWORD" in item.name:
            assert not item.has_default, f"${{{item.name}}} must not have a default"
    health = healthcheck_text(services["elasticsearch"])
    assert "curl" in health and "-u" in health and "ELASTIC_PASSWORD" in health


def test_kibana_uses_kibana_system_with_a_password_set_by_a_one_shot_job(
    services: dict[str, dict[str, Any]],
) -> None:
    kibana = environment(services["kibana"])
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert [i.name for i in interpolations(kibana["ELASTICSEARCH_PASSWORD"])] == ["KIBANA_PASSWORD"]
    job = services["kibana-password"]
    script = " ".join(command(job) + [str(part) for part in job.get("entrypoint") or []])
    assert "/_security/user/kibana_system/_password" in script
    assert "KIBANA_PASSWORD" in script and "ELASTIC_PASSWORD" in script
    assert "KIBANA_PASSWORD" in environment(job) and "ELASTIC_PASSWORD" in environment(job)
    assert depends_on(services["kibana"]).get("kibana-password") == "service_completed_successfully"
    assert 5601 in {int(str(p).rsplit(":", 1)[-1]) for p in services["kibana"].get("ports", [])}


def test_kibana_setup_job_imports_the_dashboards(
    services: dict[str, dict[str, Any]], wirewatch_services: dict[str, dict[str, Any]]
) -> None:
    from click.testing import CliRunner

    from wirewatch.cli import main

    job = wirewatch_services["kibana-setup"]
    assert job.get("restart") == "no"
    assert depends_on(job) == {"kibana": "service_healthy", "setup": "service_completed_successfully"}
    cmd = command(job)
    # The same arguments parse with the real CLI (--help stops before anything runs).
    result = CliRunner().invoke(main, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    url = cmd[cmd.index("--url") + 1]
    assert url == "http://kibana:5601", "the import must reach Kibana's container port by service name"
    published = {int(str(p).rsplit(":", 1)[-1]) for p in services["kibana"].get("ports", [])}
    assert 5601 in published
    # The saved objects must be in the image: copied into the build stage, installed as data files.
    copies = [i.arguments.split() for i in dockerfile_instructions() if i.keyword == "COPY"]
    assert any(src.rstrip("/") == "deploy/kibana" for args in copies for src in args[:-1])
    data_files = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["data-files"]
    installed = [path for pattern in data_files["share/wirewatch/kibana"] for path in ROOT.glob(pattern)]
    assert sorted(installed) == sorted((ROOT / "deploy" / "kibana").glob("*.ndjson"))


# --- Kafka ------------------------------------------------------------------------------------


def listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_kafka_runs_in_kraft_mode_without_zookeeper(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    mentions = [text for text in strings_in(compose) if "zookeeper" in text.lower()]
    assert not mentions, f"ZooKeeper configured: {mentions}"
    kafka = services["kafka"]
    image = kafka["image"]
    assert image.startswith("apache/kafka:")
    major, minor = (int(part) for part in image_tag(image).split(".")[:2])
    assert (major, minor) >= (3, 9)
    env = {key: str(value) for key, value in environment(kafka).items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env.get("CLUSTER_ID")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controllers = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert set(bound) <= set(protocols), "every listener needs a security protocol"
    assert set(controllers) <= set(bound), "the controller listener must be bound"
    assert not set(controllers) & set(advertised), "brokers must not advertise the controller listener"
    assert set(advertised) <= set(bound)

    voters = [v.partition("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")]
    assert len(voters) == 1
    node_id, _, address = voters[0]
    assert node_id == env["KAFKA_NODE_ID"]
    assert address == f"kafka:{bound[controllers[0]][1]}", "the voter must be this node's controller port"

    # Containers reach the broker at the address it advertises, and port numbers line up.
    bootstrap = str(services["setup"]["environment"]["WIREWATCH_KAFKA_BOOTSTRAP"])
    assert bootstrap in {f"{host}:{port}" for host, port in advertised.values()}
    for name, (_, port) in advertised.items():
        assert bound[name][1] == port, f"listener {name}: bound and advertised ports differ"
    published = {str(p).rsplit(":", 2)[-1] for p in kafka.get("ports", [])}
    for host, port in advertised.values():
        if host == "localhost":
            assert str(port) in published, f"host listener port {port} is not published"


# --- dependencies, health and volumes -------------------------------------------------------


def test_depends_on_targets_exist_and_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for target, condition in depends_on(svc).items():
            assert target in services, f"{name} depends on undefined service {target!r}"
            assert target != name
            assert condition in CONDITIONS, f"{name} -> {target}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert healthcheck_text(services[target]), f"{name} waits for {target} to be healthy"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is one-shot"


def test_startup_order(services: dict[str, dict[str, Any]], run_services: dict[str, dict[str, Any]]) -> None:
    assert depends_on(services["setup"]) == {
        "kafka": "service_healthy",
        "elasticsearch": "service_healthy",
    }
    for name, svc in run_services.items():
        assert depends_on(svc).get("setup") == "service_completed_successfully", name


def test_healthchecks_use_the_settings_web_port(run_services: dict[str, dict[str, Any]]) -> None:
    for name, svc in run_services.items():
        test = svc["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], f"{name}: the slim image has python, not curl"
        ports = re.findall(r"http://127\.0\.0\.1:(\d+)/healthz", healthcheck_text(svc))
        assert ports, f"{name}: healthcheck does not request /healthz"
        configured = int(environment(svc).get("WIREWATCH_WEB_PORT", WEB_PORT_DEFAULT))
        assert {int(p) for p in ports} == {configured} == {WEB_PORT_DEFAULT}, name


def test_fetcher_mounts_the_feeds_file_read_only(services: dict[str, dict[str, Any]]) -> None:
    fetcher = services["fetcher"]
    target = environment(fetcher)["WIREWATCH_FEEDS_FILE"]
    mounts = []
    for volume in fetcher.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            path, _, mode = rest.partition(":")
            mounts.append((source, path, "ro" in mode.split(",")))
        else:
            mounts.append((volume.get("source"), volume.get("target"), bool(volume.get("read_only"))))
    # Its directory, not the file itself: `wirewatch feeds add` replaces the file (a rename), and a
    # bind mount of a single file keeps showing the file it was made on.
    assert ("./config", str(Path(target).parent), True) in mounts
    assert Path(target).name == "feeds.yaml"


def test_wirewatch_settings_in_the_env_file_reach_the_services(
    wirewatch_services: dict[str, dict[str, Any]],
) -> None:
    """Alert targets (and any other setting) written in .env, as .env.example says: compose reads
    .env only to fill in ${…} otherwise, so they never reached the alerts service."""
    for name, service in wirewatch_services.items():
        files = service.get("env_file") or []
        assert {"path": ".env", "required": False} in files, name


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for svc_name in ("kafka", "elasticsearch"):
        assert services[svc_name].get("volumes"), f"{svc_name} needs a named data volume"
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
                named = not source.startswith((".", "/", "~", "$"))
            else:
                source, named = volume.get("source", ""), volume.get("type") == "volume"
            if named:
                assert source in declared, f"{name}: volume {source!r} is not declared"


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_the_wirewatch_script() -> None:
    instructions = dockerfile_instructions()
    entrypoints = [i.arguments for i in instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["wirewatch"]
    scripts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["scripts"]
    assert "wirewatch" in scripts
    cmds = [i.arguments for i in instructions if i.keyword == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["--help"]


def test_dockerfile_runtime_image() -> None:
    instructions = dockerfile_instructions()
    assert final_stage_base() == "python:3.11-slim"
    users = [i.arguments.split(":")[0] for i in instructions if i.keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must not run as root"
    exposed = {
        int(port.split("/")[0]) for i in instructions if i.keyword == "EXPOSE" for port in i.arguments.split()
    }
    assert WEB_PORT_DEFAULT in exposed
    assert any("pip install" in i.arguments and "--no-cache-dir" in i.arguments for i in instructions)


def test_dockerfile_copies_what_the_build_needs() -> None:
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    assert ".env" in ignored, ".env holds the passwords: keep it out of the build context"
    readme = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["readme"]
    sources: list[str] = []
    for instruction in dockerfile_instructions():
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments:
            sources += instruction.arguments.split()[:-1]
    assert "pyproject.toml" in sources and readme in sources
    assert any(s.rstrip("/") == "services" for s in sources)
    for source in sources:
        path = source.rstrip("/")
        assert (ROOT / path).exists(), f"COPY {source}: not in the repository"
        hidden = [pattern for pattern in ignored if fnmatch.fnmatch(path, pattern.rstrip("/"))]
        assert not hidden, f"COPY {source} is excluded by .dockerignore {hidden}"
