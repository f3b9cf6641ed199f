"""The container deployment agrees with the code, checked without Docker.

docker-compose.yml, deploy/Dockerfile, .dockerignore and the postgres init script are parsed and
cross-checked against `chassis.settings` (services, ports, the variables the code reads),
pyproject.toml and the modules the containers run. The healthcheck commands are run for real
against a stand-in HTTP server.
"""

import copy
import functools
import http.server
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from chassis import secrets
from chassis.settings import ENVIRONMENT, FRONTS, PORTS, SERVICES
from deploy import secrets as generated
from tests.support import service_environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
POSTGRES_INIT = ROOT / "deploy" / "postgres"


# Variables the Dockerfile may set that no platform code reads: the image's own SERVICE (used by
# CMD and HEALTHCHECK) and the interpreter's and pip's settings.
IMAGE_ONLY_VARIABLES = re.compile(r"SERVICE|PYTHON\w+|PIP_\w+")

# Settings `python -m deploy.topology` reads to name and shape queues: the services must see the
# same values, or they would consume from queues that were never declared.
TOPOLOGY_SETTINGS = (
    "AMQP_URI",
    "RETRY_ATTEMPTS",
    "RETRY_BASE_DELAY_MS",
    "RETRY_MAX_DELAY_MS",
    "UNROUTED_RETENTION_HOURS",
    "QUEUE_TYPE",
)

HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"


# --- reading the files ----------------------------------------------------------------------


@functools.cache
def _compose_text() -> str:
    return COMPOSE.read_text()


def load_compose() -> dict:
    """docker-compose.yml as compose sees it (merge keys and anchors resolved); a fresh copy."""
    return copy.deepcopy(yaml.safe_load(_compose_text()))


def environment(definition: dict, with_secrets: bool = False) -> dict[str, str]:
    """The container's `environment`; `with_secrets`: and its env files, as `make secrets`
    generates them."""
    env = definition.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    found = {name: None if value is None else str(value) for name, value in env.items()}
    if with_secrets:
        for path in env_files(definition):
            found |= read_env(generated_compose_secrets() / Path(path).relative_to(SECRETS))
    return found


SECRETS = Path("deploy/secrets")


def env_files(definition: dict) -> list[str]:
    files = definition.get("env_file") or []
    return [files] if isinstance(files, str) else [f if isinstance(f, str) else f["path"]
                                                   for f in files]  # fmt: skip


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@functools.cache
def generated_compose_secrets() -> Path:
    """What `make secrets` writes, written to a folder of the test session's own."""
    folder = Path(tempfile.mkdtemp(prefix="compose-secrets-")) / "secrets"
    generated.compose(folder)
    return folder


def depends_on(definition: dict) -> dict[str, str]:
    deps = definition.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command(definition: dict) -> list[str]:
    cmd = definition.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def published_ports(definition: dict) -> list[tuple[int, int]]:
    """(host port, container port) of every published port."""
    found = []
    for port in definition.get("ports") or []:
        if isinstance(port, dict):
            found.append((int(port["published"]), int(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            found.append((int(parts[-2]), int(parts[-1])))
    return found


def platform_containers(doc: dict) -> dict[str, dict]:
    """Containers built from deploy/Dockerfile: the services and their one-shot jobs."""
    return {
        name: definition
        for name, definition in doc["services"].items()
        if isinstance(definition.get("build"), dict)
        and definition["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def build_arg(definition: dict, name: str) -> str | None:
    args = definition["build"].get("args") or {}
    if isinstance(args, list):
        args = dict(item.split("=", 1) for item in args)
    value = args.get(name)
    return None if value is None else str(value)


def readable_variables(service: str | None) -> frozenset[str]:
    """What the code reads in a container of `service` (None: every service's, as topology)."""
    services = SERVICES if service is None else (service,)
    names = set(ENVIRONMENT)
    for name in services:
        names |= service_environment(name)
    # chassis.settings.setting() reads `<SERVICE>_<NAME>` before `<NAME>`.
    prefixed = {f"{s.upper()}_{n}" for s in services for n in names}
    return frozenset(names | prefixed)


def unknown_variables(name: str, definition: dict) -> set[str]:
    service = None if name == "topology" else build_arg(definition, "SERVICE")
    return set(environment(definition, with_secrets=True)) - readable_variables(service)


def is_pinned(image: str) -> bool:
    """An exact version: a digest, or a tag naming at least major.minor (never `latest`)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return "latest" not in tag and re.match(r"v?\d+\.\d+", tag) is not None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@functools.cache
def dockerfile() -> tuple[tuple[str, str], ...]:
    return tuple(dockerfile_instructions(DOCKERFILE.read_text()))


def instruction(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile() if kw == keyword]


def exec_form(args: str) -> list[str] | None:
    return json.loads(args) if args.startswith("[") else None


def healthcheck_argv(args: str) -> list[str]:
    """The command of a Dockerfile HEALTHCHECK (options before CMD skipped)."""
    _, _, cmd = args.partition("CMD")
    cmd = cmd.strip()
    return exec_form(cmd) or ["/bin/sh", "-c", cmd]


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out: it or one of its folders matches a pattern."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        candidate = "/".join(parts[:i])
        for pattern in patterns:
            if pattern.startswith("!"):
                continue
            if fnmatch(candidate, pattern) or (
                pattern.startswith("**/") and fnmatch(candidate, pattern[3:])
            ):
                return True
    return False


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- compose: services, jobs, ports ---------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_a_container_a_migrate_job_and_healthchecks(service):
    services = load_compose()["services"]
    assert service in services, f"docker-compose.yml has no {service}"
    assert f"{service}-migrate" in services, f"docker-compose.yml has no {service}-migrate job"
    definition = services[service]
    assert build_arg(definition, "SERVICE") == service
    health = definition.get("healthcheck") or {}
    assert not health.get("disable") and health.get("test"), f"{service} has no healthcheck"
    assert any("/health/ready" in str(part) for part in health["test"])
    # No command override: the image's CMD (chassis.run $SERVICE) runs it.
    assert not command(definition)


def test_compose_has_the_infrastructure_and_no_stray_platform_containers():
    doc = load_compose()
    assert {"rabbitmq", "postgres", "mailpit", "topology"} <= set(doc["services"])
    expected = {*SERVICES, *FRONTS, *(f"{s}-migrate" for s in SERVICES), "topology"}
    assert set(platform_containers(doc)) == expected


@pytest.mark.parametrize("service", SERVICES)
def test_published_ports_are_the_contract_ports(service):
    definition = load_compose()["services"][service]
    port = PORTS[service]
    assert published_ports(definition) == [(port, port)]
    assert environment(definition).get("HTTP_PORT") == str(port)
    assert environment(definition).get("HTTP_HOST") == "0.0.0.0"
    assert build_arg(definition, "HTTP_PORT") == str(port), "the image EXPOSEs the wrong port"


def test_platform_containers_share_their_service_image():
    doc = load_compose()
    for name, definition in platform_containers(doc).items():
        service = build_arg(definition, "SERVICE")
        assert service in (*SERVICES, *FRONTS), f"{name}: build arg SERVICE={service!r}"
        assert definition["build"]["context"] == "."
        assert (ROOT / definition["build"]["dockerfile"]).is_file()
        assert build_arg(definition, "HTTP_PORT") == str(PORTS[service])
        assert definition.get("image") == doc["services"][service].get("image"), (
            f"{name} does not run the {service} image"
        )


# --- compose: configuration -----------------------------------------------------------------


def test_platform_containers_set_only_variables_the_code_reads():
    doc = load_compose()
    for name, definition in platform_containers(doc).items():
        assert not unknown_variables(name, definition), (
            f"{name} sets variables no code reads: {sorted(unknown_variables(name, definition))}"
        )


def test_a_misspelt_or_misplaced_variable_is_caught():
    doc = load_compose()
    accounts = doc["services"]["accounts"]
    accounts["environment"]["AMQP_URL"] = "amqp://x"  # typo of AMQP_URI
    accounts["environment"]["SMTP_HOST"] = "mailpit"  # notify's, not accounts'
    accounts["environment"]["ACCOUNTS_LOG_LEVEL"] = "DEBUG"  # a valid prefixed override
    accounts["environment"]["NOTIFY_LOG_LEVEL"] = "DEBUG"  # another service's prefix
    assert unknown_variables("accounts", accounts) == {"AMQP_URL", "SMTP_HOST", "NOTIFY_LOG_LEVEL"}


@pytest.mark.parametrize("service", SERVICES)
def test_database_urls_name_the_service_database_on_the_compose_postgres(service):
    services = load_compose()["services"]
    postgres = environment(services["postgres"], with_secrets=True)
    for name in (service, f"{service}-migrate"):
        url = urlsplit(environment(services[name], with_secrets=True)["DATABASE_URL"])
        assert url.scheme in ("postgresql", "postgres")
        assert url.path == f"/{service}", f"{name} uses database {url.path!r}"
        assert (url.hostname, url.port or 5432) == ("postgres", 5432)
        assert url.username == postgres.get("POSTGRES_USER", "postgres")
        if postgres.get("POSTGRES_HOST_AUTH_METHOD") != "trust":
            assert url.password == postgres["POSTGRES_PASSWORD"]


def test_amqp_uri_reaches_the_compose_broker_with_its_credentials():
    doc = load_compose()
    rabbit = environment(doc["services"]["rabbitmq"], with_secrets=True)
    for name, definition in platform_containers(doc).items():
        if build_arg(definition, "SERVICE") in FRONTS:
            continue  # a web front uses no broker
        url = urlsplit(environment(definition, with_secrets=True)["AMQP_URI"])
        assert (url.scheme, url.hostname, url.port or 5672) == ("amqp", "rabbitmq", 5672), name
        assert url.username == rabbit.get("RABBITMQ_DEFAULT_USER", "guest"), name
        assert url.password == rabbit.get("RABBITMQ_DEFAULT_PASS", "guest"), name


@pytest.mark.parametrize("front", FRONTS)
def test_a_web_front_is_served_on_its_port_and_reaches_the_services_by_http(front):
    from services.portal.settings import UPSTREAMS

    services = load_compose()["services"]
    definition = services[front]
    port = PORTS[front]
    assert published_ports(definition) == [(port, port)]
    assert build_arg(definition, "HTTP_PORT") == str(port)
    assert not command(definition)  # the image's CMD: chassis.run $SERVICE
    env = environment(definition)
    assert env["HTTP_PORT"] == str(port) and env["HTTP_HOST"] == "0.0.0.0"
    assert not {"DATABASE_URL", "AMQP_URI"} & set(env), "a web front has no database or broker"
    assert f"{front}-migrate" not in services
    assert env_files(definition) == ["deploy/secrets/portal.env"]  # its SESSION_SECRET
    assert environment(definition, with_secrets=True)["SESSION_SECRET"]
    assert env.get("PLATFORM_ENV") == "production"
    health = definition.get("healthcheck") or {}
    assert any("/health/ready" in str(part) for part in health["test"])
    for upstream in UPSTREAMS:
        url = urlsplit(env[f"{upstream.upper()}_URL"])
        if upstream in SERVICES:
            assert (url.hostname, url.port) == (upstream, PORTS[upstream]), upstream
            assert upstream in depends_on(definition)


def test_notify_sends_mail_to_mailpit():
    services = load_compose()["services"]
    env = environment(services["notify"])
    assert env["SMTP_HOST"] == "mailpit"
    assert env["SMTP_PORT"] == "1025"
    assert (1025, 1025) in published_ports(services["mailpit"])
    assert (8025, 8025) in published_ports(services["mailpit"])


def test_topology_and_services_agree_on_the_queue_settings():
    services = load_compose()["services"]
    topology = environment(services["topology"], with_secrets=True)
    for service in SERVICES:
        env = environment(services[service], with_secrets=True)
        for name in TOPOLOGY_SETTINGS:
            assert env.get(name) == topology.get(name), f"{service} and topology differ on {name}"


# --- compose: secrets ------------------------------------------------------------------------

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|DATA_KEY|_PASS$|AMQP_URI|DATABASE_URL")


def test_compose_holds_no_secret_only_the_generated_git_ignored_files_do():
    doc = load_compose()
    for name, definition in doc["services"].items():
        literal = {k for k in environment(definition) if SECRET_NAMES.search(k)}
        assert not literal, f"{name} sets {sorted(literal)} in docker-compose.yml"
        for path in env_files(definition):
            assert Path(path).parent == SECRETS, f"{name} reads {path}"
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    for pattern in ("deploy/secrets", ".dev"):
        assert pattern in dockerignore_patterns(), f"{pattern} would go into the images"
    for word in ("replace_me", "replace-me", "changeme"):
        assert word not in _compose_text().lower(), word


def test_make_secrets_writes_every_file_compose_reads_and_keeps_them_on_a_second_run():
    doc = load_compose()
    folder = generated_compose_secrets()
    wanted = {Path(p).relative_to(SECRETS) for d in doc["services"].values() for p in env_files(d)}
    wanted |= {Path(s["file"]).relative_to(SECRETS) for s in doc["secrets"].values()}
    assert wanted <= {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert generated.compose(folder) == []
    assert before == {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / "accounts.env").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("service", [*SERVICES, *FRONTS])
def test_every_service_starts_in_production_on_what_make_secrets_generates(service, monkeypatch):
    doc = load_compose()
    definition = doc["services"][service]
    env = environment(definition, with_secrets=True)
    mounted = {f"/run/secrets/{n}": generated_compose_secrets() / Path(s["file"]).relative_to(
        SECRETS) for n, s in doc["secrets"].items()}  # fmt: skip
    for name in [n for n in os.environ if n.startswith(("JWT_", "ACCOUNTS_", "ADMIN_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(mounted.get(value, value)))
    assert env["PLATFORM_ENV"] == "production"
    assert [str(r) for r in secrets.refusals(service)] == []


# --- compose: start order -------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_services_start_after_infrastructure_migrations_and_topology(service):
    services = load_compose()["services"]
    expected = {
        "rabbitmq": HEALTHY,
        "postgres": HEALTHY,
        f"{service}-migrate": COMPLETED,
        "topology": COMPLETED,
    }
    if service == "notify":
        expected["mailpit"] = HEALTHY
    assert depends_on(services[service]) == expected
    assert depends_on(services[f"{service}-migrate"]) == {"postgres": HEALTHY}


def test_topology_waits_for_a_healthy_broker():
    assert depends_on(load_compose()["services"]["topology"]) == {"rabbitmq": HEALTHY}


def test_every_awaited_container_can_report_what_is_awaited():
    services = load_compose()["services"]
    for name, definition in services.items():
        for target, condition in depends_on(definition).items():
            assert target in services, f"{name} depends on unknown {target}"
            awaited = services[target]
            if condition == HEALTHY:
                health = awaited.get("healthcheck") or {}
                assert health.get("test") and not health.get("disable"), f"{target}: no health"
            elif condition == COMPLETED:
                assert command(awaited), f"{target} is awaited to finish but is no one-shot"
                assert str(awaited.get("restart", "no")) == "no", f"{target} restarts"


def test_infrastructure_healthchecks():
    services = load_compose()["services"]
    rabbit = " ".join(services["rabbitmq"]["healthcheck"]["test"])
    assert "rabbitmq-diagnostics -q ping" in rabbit
    postgres = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in postgres
    # TCP, not the socket: the image's init-time server listens on the socket only.
    assert "-h" in postgres and postgres[postgres.index("-h") + 1] in ("127.0.0.1", "localhost")
    assert services["mailpit"]["healthcheck"]["test"]


# --- compose: images ------------------------------------------------------------------------


def test_every_image_is_pinned_to_an_exact_version():
    for name, definition in load_compose()["services"].items():
        if "build" in definition:
            continue  # built here from deploy/Dockerfile, whose base image is checked below
        assert is_pinned(definition["image"]), f"{name}: {definition['image']} is not pinned"


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("rabbitmq:3.13.7-management", True),
        ("postgres:15.19-bookworm", True),
        ("axllent/mailpit:v1.31.3", True),
        ("postgres@sha256:" + "0" * 64, True),
        ("postgres", False),
        ("postgres:latest", False),
        ("postgres:15", False),
        ("rabbitmq:3-management", False),
        ("axllent/mailpit:latest", False),
        ("localhost:5000/mailpit", False),
    ],
)
def test_pin_rule(image, pinned):
    assert is_pinned(image) is pinned


def test_infrastructure_images_are_the_intended_ones():
    services = load_compose()["services"]
    assert re.fullmatch(r"rabbitmq:3\.\d+\.\d+-management", services["rabbitmq"]["image"])
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", services["postgres"]["image"])
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", services["mailpit"]["image"])


# --- compose: jobs run modules that exist ---------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_migrate_job_runs_chassis_migrate_for_its_service(service):
    argv = command(load_compose()["services"][f"{service}-migrate"])
    assert argv[:3] == ["python", "-m", "chassis.migrate"]
    assert argv[3:] == [service]
    assert importlib.util.find_spec(argv[2]) is not None


def test_topology_job_runs_chassis_topology_for_known_services():
    argv = command(load_compose()["services"]["topology"])
    assert argv[:3] == ["python", "-m", "deploy.topology"]
    assert set(argv[3:]) <= set(SERVICES)
    assert importlib.util.find_spec(argv[2]) is not None


# --- postgres init script -------------------------------------------------------------------


def test_postgres_init_script_creates_exactly_the_service_databases():
    scripts = sorted(POSTGRES_INIT.glob("*.sql"))
    assert scripts, "deploy/postgres has no init script"
    sql = "\n".join(re.sub(r"--.*", "", path.read_text()) for path in scripts)
    created = re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", sql, flags=re.IGNORECASE)
    assert sorted(created) == sorted(SERVICES)


def test_postgres_init_scripts_are_mounted_where_the_image_runs_them():
    volumes = load_compose()["services"]["postgres"].get("volumes") or []
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in volumes if ":" in str(v)}
    source = mounts.get("/docker-entrypoint-initdb.d")
    assert source, "deploy/postgres is not mounted at /docker-entrypoint-initdb.d"
    assert (ROOT / source).resolve() == POSTGRES_INIT.resolve()


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_base_image_is_a_pinned_python_slim_the_project_supports():
    (base,) = instruction("FROM")
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim(-\w+)?", base.split()[0])
    assert match, f"base image {base!r} is not an exact python slim tag"
    assert is_pinned(base)
    requires = pyproject()["project"]["requires-python"]
    assert SpecifierSet(requires).contains(match.group(1)), f"{base} outside {requires}"


def test_dockerfile_runs_the_service_with_chassis_run_as_pid_1():
    (cmd,) = instruction("CMD")
    form = exec_form(cmd)
    if form is None:
        script = cmd
    elif form[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        script = form[2]
    else:
        pytest.fail("an exec-form CMD cannot expand $SERVICE")
    argv = shlex.split(script)
    # `exec` replaces the shell, so SIGTERM reaches chassis.run's graceful stop.
    assert argv[0] == "exec", "CMD leaves a shell as PID 1"
    argv = argv[1:]
    assert argv[:3] == ["python", "-m", "chassis.run"]
    assert argv[3:] in (["$SERVICE"], ["${SERVICE}"])
    assert importlib.util.find_spec("chassis.run") is not None


def test_dockerfile_build_args_feed_the_runtime_and_the_exposed_port():
    args = set(instruction("ARG"))
    assert {"SERVICE", "HTTP_PORT"} <= args
    assert instruction("EXPOSE") in (["${HTTP_PORT}"], ["$HTTP_PORT"])
    env = {}
    for line in instruction("ENV"):
        tokens = shlex.split(line)
        if "=" not in tokens[0]:  # legacy `ENV NAME value`
            tokens = [f"{tokens[0]}={' '.join(tokens[1:])}"]
        env.update(token.split("=", 1) for token in tokens)
    assert env.get("SERVICE") in ("${SERVICE}", "$SERVICE")
    assert env.get("HTTP_PORT") in ("${HTTP_PORT}", "$HTTP_PORT")
    assert env.get("HTTP_HOST") == "0.0.0.0"
    for name in env:
        assert name in ENVIRONMENT or IMAGE_ONLY_VARIABLES.fullmatch(name), (
            f"the Dockerfile sets {name}, which no code reads"
        )


def test_dockerfile_runs_as_a_non_root_user():
    users = [(i, args) for i, (kw, args) in enumerate(dockerfile()) if kw == "USER"]
    assert users, "the image runs as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    cmd_index = max(i for i, (kw, _) in enumerate(dockerfile()) if kw == "CMD")
    assert index < cmd_index


def test_dockerfile_installs_the_project_with_pip_from_everything_it_packages():
    runs = " && ".join(instruction("RUN"))
    assert re.search(r"\bpip install (--[\w-]+ )*\.(\s|$)", runs), "the project is not installed"
    copied = set()
    for args in instruction("COPY"):
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        copied.update(p.rstrip("/") for p in parts[:-1])
    assert "pyproject.toml" in copied
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in include}
    assert packages <= copied, f"pip install . would miss {sorted(packages - copied)}"
    patterns = dockerignore_patterns()
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not ignored(source, patterns), f".dockerignore leaves out {source}"


def test_dockerignore_keeps_the_installed_files_and_drops_local_state():
    patterns = dockerignore_patterns()
    for path in (".venv", ".git", "tests", "chassis/__pycache__"):
        assert ignored(path, patterns), f".dockerignore sends {path} to the build"
    for package in ("chassis", "contracts", "services", "deploy"):
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and "__pycache__" not in relative and path.suffix in (".py", ".mako"):
                assert not ignored(relative, patterns), f".dockerignore leaves out {relative}"


# --- healthchecks, run for real -------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    statuses: dict[str, int] = {}

    def do_GET(self):
        status = self.statuses.get(self.path, 404)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    """A stand-in service on a free port; set `.statuses[path] = code` to shape its answers."""
    handler = type("Handler", (_Health,), {"statuses": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.statuses = handler.statuses
    yield server
    server.shutdown()
    server.server_close()


def run_healthcheck(argv: list[str], service: str, port: int) -> int:
    assert argv[0] == "python", f"healthcheck runs {argv[0]!r}, not the image's python"
    env = {"SERVICE": service, "HTTP_PORT": str(port), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, *argv[1:]], env=env, cwd=ROOT, capture_output=True, timeout=20
    )
    return result.returncode


def test_dockerfile_healthcheck_asks_health_live_on_the_service_port(health_server):
    (args,) = instruction("HEALTHCHECK")
    argv = healthcheck_argv(args)
    port = health_server.server_address[1]
    health_server.statuses["/health/live"] = 200
    assert run_healthcheck(argv, "notify", port) == 0
    health_server.statuses["/health/live"] = 503
    assert run_healthcheck(argv, "notify", port) != 0


def test_compose_healthcheck_asks_health_ready_on_the_service_port(health_server):
    test = load_compose()["services"]["accounts"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    port = health_server.server_address[1]
    health_server.statuses["/health/ready"] = 200
    assert run_healthcheck(test[1:], "accounts", port) == 0
    health_server.statuses["/health/ready"] = 503
    assert run_healthcheck(test[1:], "accounts", port) != 0


def test_every_file_a_service_reads_is_installed_with_it():
    """`pip install .` (the image) takes a package's other files only when package-data names
    them: templates, policy files, static files."""
    patterns = pyproject()["tool"]["setuptools"]["package-data"]
    for path in sorted((ROOT / "services").rglob("*")):
        if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(ROOT)
        if relative.parts[1:3] == ("consulting", "cases") or path.name == "README.md":
            continue  # the eligibility cases are the tests'; READMEs are for people
        package = ".".join(relative.parts[:2])
        inside = relative.relative_to(*relative.parts[:2]).as_posix()
        wanted = [*patterns.get("*", ()), *patterns.get(package, ())]
        assert any(fnmatch(inside, p) if "/" in p else fnmatch(path.name, p) for p in wanted), (
            f"{relative} is not installed: add it to [tool.setuptools.package-data]"
        )


def test_the_image_installs_every_dependency_from_the_lock_file_with_hashes():
    """deploy/requirements.lock (pip-compile --generate-hashes) pins what pyproject.toml names at
    the same versions, and every transitive dependency, each with its hashes; the Dockerfile
    installs from it with --require-hashes and ships LICENSE."""
    lock = (ROOT / "deploy" / "requirements.lock").read_text()
    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock, re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock.split("\n", 1)[1])
    assert all("--hash=sha256:" in e for e in entries if "==" in e.split("\n")[0])
    canonical = {name.lower().replace("_", "-"): version for name, version in pinned.items()}
    for requirement in pyproject()["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if version:
            assert canonical.get(name.lower()) == version, f"{name}: the lock has another version"
        else:
            assert name.split("<")[0].lower() in canonical, f"{name} is not locked"
    runs = " && ".join(instruction("RUN"))
    assert "pip install --require-hashes --no-deps -r requirements.lock" in runs
    copied = [a for a in instruction("COPY")]
    assert any("LICENSE" in a.split() for a in copied), "the image is built without LICENSE"
