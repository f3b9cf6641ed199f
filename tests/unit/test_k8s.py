"""deploy/k8s agrees with the code, checked without a cluster or kubectl.

Every manifest is parsed (multi-document YAML) and cross-checked with chassis/settings.py: the
services and their ports, the variables the code reads, the health endpoints chassis/web.py
serves, the commands the containers run, and the broker users of deploy/rabbitmq/.
"""

import copy
import functools
import ipaddress
import json
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from chassis import secrets
from chassis.loader import service_class
from chassis.operable import Operable
from chassis.settings import (
    DEFAULTS,
    ENVIRONMENT,
    FRONTS,
    OPERATIONS_PORT_OFFSET,
    PORTS,
    SERVICES,
    TOKEN_ISSUER,
)
from deploy import secrets as generated
from tests.support import service_environment

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"

# Settings `python -m deploy.topology` names and shapes queues by: services must see the same.
TOPOLOGY_SETTINGS = (
    "RETRY_ATTEMPTS",
    "RETRY_BASE_DELAY_MS",
    "RETRY_MAX_DELAY_MS",
    "UNROUTED_RETENTION_HOURS",
    "QUEUE_TYPE",
)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# --- reading the manifests ------------------------------------------------------------------


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def _manifests(folder: Path) -> tuple[tuple[Path, dict], ...]:
    """(file, object) of every manifest in `folder` but its kustomization, in file order."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found.extend((path, doc) for doc in _documents(path))
    return tuple(found)


def manifests(folder: Path = BASE) -> list[dict]:
    return copy.deepcopy([doc for _, doc in _manifests(folder)])


def kustomization(folder: Path) -> dict:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def environment(objects: list[dict], container: dict) -> dict[str, str]:
    """What the container's process sees: envFrom ConfigMaps and Secrets (made by the
    overlay's secretGenerator from what `python -m deploy.secrets kubernetes` writes), then
    `env`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(generated_secret(source["secretRef"]["name"]))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<from a reference>")
    if "SECRETS_DIR" in env:
        env.update(
            {
                name: value
                for name, value in mounted_secret(objects, container, env["SECRETS_DIR"]).items()
                if name not in env
            }
        )
    return env


def mounted_secret(objects: list[dict], container: dict, folder: str) -> dict[str, str]:
    """The settings chassis.settings reads from `SECRETS_DIR`: the keys of the Secret mounted
    there (its files)."""
    (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == folder]
    assert mount.get("readOnly") is True
    for workload in objects:
        spec = workload.get("spec", {}).get("template", {}).get("spec", {})
        if container in spec.get("containers", []):
            (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
            return generated_secret(volume["secret"]["secretName"])
    raise AssertionError("the container is in no workload")


def secret_generator() -> dict[str, dict]:
    return {g["name"]: g for g in kustomization(PRODUCTION)["secretGenerator"]}


@functools.cache
def generated_folder() -> Path:
    """What the operator generates into the overlay's secrets/, generated into a folder of the
    test session's own."""
    folder = Path(tempfile.mkdtemp(prefix="k8s-secrets-")) / "secrets"
    generated.kubernetes(folder)
    return folder


def generated_secret(name: str) -> dict[str, str]:
    """The keys and values of a generated Secret, as its env files hold them."""
    generator = secret_generator()[name]
    values = {}
    for path in generator.get("envs", []):
        text = (generated_folder() / Path(path).relative_to("secrets")).read_text()
        values |= dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    for path in generator.get("files", []):
        values[Path(path).name] = str(generated_folder() / Path(path).relative_to("secrets"))
    return values


def readable_variables(service: str | None) -> frozenset[str]:
    """What the code reads in a container of `service` (None: every service's, as topology)."""
    services = SERVICES if service is None else (service,)
    names = set(ENVIRONMENT)
    for name in services:
        names |= service_environment(name)
    # chassis.settings.setting() reads `<SERVICE>_<NAME>` before `<NAME>`.
    return frozenset(names | {f"{s.upper()}_{n}" for s in services for n in names})


def unknown_variables(objects: list[dict], workload: dict, service: str | None) -> set[str]:
    unknown = set()
    for container in pod_spec(workload)["containers"]:
        unknown |= set(environment(objects, container)) - readable_variables(service)
    return unknown


def workloads(objects: list[dict]) -> list[tuple[dict, str | None]]:
    """Every Deployment and Job with the service whose code it runs (None: all, topology)."""
    found = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            name = obj["metadata"]["name"]
            found.append((obj, None if name == "topology" else name.removesuffix("-migrate")))
    return found


def endpoint(method_name: str) -> str:
    (entrypoint,) = getattr(Operable, method_name).nameko_entrypoints
    return entrypoint.url


# --- shape ----------------------------------------------------------------------------------


def test_every_manifest_is_a_well_formed_object():
    for folder in (BASE, PRODUCTION):
        for path, doc in _manifests(folder):
            assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
            assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], path.name
            assert isinstance(doc.get("kind"), str) and doc["kind"], path.name
            name = (doc.get("metadata") or {}).get("name")
            assert isinstance(name, str) and DNS_LABEL.match(name), f"{path.name}: name {name!r}"


def test_objects_are_unique_and_the_namespace_is_declared():
    objects = manifests()
    keys = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "an object is defined twice"
    namespace = kustomization(BASE)["namespace"]
    find(objects, "Namespace", namespace)


@pytest.mark.parametrize("folder", [BASE, PRODUCTION], ids=["base", "production"])
def test_kustomizations_list_files_that_exist_and_every_file_is_listed(folder):
    doc = kustomization(folder)
    assert doc["apiVersion"].startswith("kustomize.config.k8s.io/")
    assert doc["kind"] == "Kustomization"
    listed = set()
    for resource in doc.get("resources", []):
        target = (folder / resource).resolve()
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{resource} is no kustomization"
        else:
            assert target.is_file(), f"{folder.name}/kustomization.yaml lists missing {resource}"
            listed.add(target.name)
    for patch in doc.get("patches", []):
        assert (folder / patch["path"]).is_file(), f"missing patch {patch['path']}"
        listed.add(Path(patch["path"]).name)
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed, f"files not in the kustomization: {sorted(on_disk - listed)}"


def test_the_production_overlay_changes_only_what_the_base_has():
    base = manifests()
    doc = kustomization(PRODUCTION)
    for patch in doc["patches"]:
        for target in _documents(PRODUCTION / patch["path"]):
            find(base, target["kind"], target["metadata"]["name"])
    for item in doc["replicas"]:
        find(base, "Deployment", item["name"])
    images = {
        c["image"] for workload, _ in workloads(base) for c in pod_spec(workload)["containers"]
    }
    for image in doc["images"]:
        assert image["name"] in images, f"the overlay retags {image['name']}, which nothing runs"
        assert re.match(r"^\d+\.\d+\.\d+$", image["newTag"]), "production runs a released tag"


def test_production_logs_json_and_runs_two_of_everything():
    base = manifests()
    config = find(base, "ConfigMap", "platform-config")
    patch = find(manifests(PRODUCTION), "ConfigMap", "platform-config")
    merged = {**config["data"], **patch["data"]}
    assert merged["LOG_FORMAT"] == "json"
    assert DEFAULTS["LOG_FORMAT"] != "json"  # so the overlay is what turns it on
    replicas = {item["name"]: item["count"] for item in kustomization(PRODUCTION)["replicas"]}
    autoscaled = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["minReplicas"]
        for hpa in base
        if hpa["kind"] == "HorizontalPodAutoscaler"
    }
    for service in (*SERVICES, *FRONTS):
        assert max(replicas.get(service, 0), autoscaled.get(service, 0)) >= 2, service
        find(manifests(PRODUCTION), "PodDisruptionBudget", service)


# --- services -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_deployment_service_and_migration_job(service):
    objects = manifests()
    deployment = find(objects, "Deployment", service)
    (container,) = pod_spec(deployment)["containers"]
    assert container["image"].split(":")[0] == f"returnee-platform/{service}"
    assert "command" not in container and "args" not in container  # the image runs the service
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    svc = find(objects, "Service", service)
    assert svc["spec"]["selector"].items() <= labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["port"] == PORTS[service]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named[port["targetPort"]] == PORTS[service]

    job = find(objects, "Job", f"{service}-migrate")
    (migrate,) = pod_spec(job)["containers"]
    assert migrate["command"] == ["python", "-m", "chassis.migrate", service]
    assert migrate["image"] == container["image"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")
    assert "DATABASE_URL" in environment(objects, migrate)


@pytest.mark.parametrize("service", SERVICES)
def test_probes_ask_the_chassis_health_endpoints_on_the_service_port(service):
    assert issubclass(service_class(service), Operable)  # it serves them
    objects = manifests()
    (container,) = pod_spec(find(objects, "Deployment", service))["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    operations = PORTS[service] + OPERATIONS_PORT_OFFSET
    expected = {  # the public port alive; ready, with its reasons, on the operations port
        "livenessProbe": (endpoint("health_live"), PORTS[service]),
        "readinessProbe": (endpoint("health_ready"), operations),
        "startupProbe": (endpoint("health_live"), PORTS[service]),
    }
    for probe, (path, port) in expected.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{service} {probe} asks {get['path']}"
        assert ports.get(get["port"], get["port"]) == port, f"{service} {probe}"
    env = environment(objects, container)
    assert env["HTTP_PORT"] == str(PORTS[service])  # the port the process listens on
    assert env["HTTP_HOST"] == "0.0.0.0"  # reachable from the kubelet, not only loopback
    assert env["OPERATIONS_HOST"] == "0.0.0.0" and "OPERATIONS_PORT" not in env
    annotations = find(objects, "Deployment", service)["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["prometheus.io/port"] == str(operations)  # /metrics is there alone
    assert annotations["prometheus.io/path"] == endpoint("metrics")
    # The Service routes the API alone: the operations port is reached on the pod.
    assert [p["port"] for p in find(objects, "Service", service)["spec"]["ports"]] == [
        PORTS[service]
    ]


@pytest.mark.parametrize("front", FRONTS)
def test_a_web_front_has_a_deployment_and_service_and_no_job_database_or_broker(front):
    from services.portal.settings import UPSTREAMS

    objects = manifests()
    deployment = find(objects, "Deployment", front)
    (container,) = pod_spec(deployment)["containers"]
    assert container["image"].split(":")[0] == f"returnee-platform/{front}"
    assert "command" not in container and "args" not in container
    (port,) = find(objects, "Service", front)["spec"]["ports"]
    assert port["port"] == PORTS[front]
    assert not [o for o in objects if o["metadata"]["name"] == f"{front}-migrate"]
    env = environment(objects, container)
    assert not {"DATABASE_URL", "AMQP_URI"} & set(env)
    assert env["HTTP_PORT"] == str(PORTS[front]) and env["HTTP_HOST"] == "0.0.0.0"
    assert env["PLATFORM_ENV"] == "production" and env["SESSION_SECRET"]
    for upstream in UPSTREAMS:
        url = urlsplit(env[f"{upstream.upper()}_URL"])
        if upstream in SERVICES:
            find(objects, "Service", url.hostname)
            assert url.port == PORTS[upstream]
    paths = {e.url for m in vars(service_class(front)).values()
             for e in getattr(m, "nameko_entrypoints", ())}  # fmt: skip
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] in paths and get["path"].startswith("/health/"), probe
        assert ports.get(get["port"], get["port"]) == PORTS[front]


@pytest.mark.parametrize("service", (*SERVICES, *FRONTS))
def test_resources_and_a_grace_period_longer_than_the_shutdown_timeout(service):
    objects = manifests()
    deployment = find(objects, "Deployment", service)
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{service} {bound}"
    env = environment(objects, container)
    shutdown = float(env.get("SHUTDOWN_TIMEOUT_SECONDS", DEFAULTS["SHUTDOWN_TIMEOUT_SECONDS"]))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    pause = float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", pre_stop[-1]).group(1)) if pre_stop else 0
    assert spec["terminationGracePeriodSeconds"] > shutdown + pause


@pytest.mark.parametrize("service", SERVICES)
def test_secrets_name_the_service_broker_user_and_database(service):
    objects = manifests()
    (container,) = pod_spec(find(objects, "Deployment", service))["containers"]
    env = environment(objects, container)
    definitions = json.loads(DEFINITIONS.read_text())
    amqp = urlsplit(env["AMQP_URI"])
    assert amqp.username == service
    assert amqp.username in {user["name"] for user in definitions["users"]}
    assert amqp.path.lstrip("/") == definitions["vhosts"][0]["name"]
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in ("postgresql", "postgres") and database.path == f"/{service}"


# --- the topology step ----------------------------------------------------------------------


def test_the_topology_job_declares_as_the_deployer_with_the_services_queue_settings():
    objects = manifests()
    job = find(objects, "Job", "topology")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["python", "-m", "deploy.topology"]
    assert container["image"].split(":")[0] in {f"returnee-platform/{s}" for s in SERVICES}
    env = environment(objects, container)
    assert urlsplit(env["AMQP_URI"]).username == "deployer"
    for service in SERVICES:
        (service_container,) = pod_spec(find(objects, "Deployment", service))["containers"]
        service_env = environment(objects, service_container)
        for name in TOPOLOGY_SETTINGS:
            assert service_env.get(name) == env.get(name), f"{service} and topology: {name}"
        assert urlsplit(service_env["AMQP_URI"]).path == urlsplit(env["AMQP_URI"]).path


def test_the_autoscaler_targets_a_deployment():
    objects = manifests()
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert autoscalers
    for hpa in autoscalers:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        find(objects, "Deployment", target["name"])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


# --- variables ------------------------------------------------------------------------------


def test_every_container_sets_only_variables_the_code_reads():
    objects = manifests()
    for workload, service in workloads(objects):
        unknown = unknown_variables(objects, workload, service)
        assert not unknown, f"{workload['metadata']['name']} sets {sorted(unknown)}"


def test_a_misspelt_or_misplaced_variable_is_caught():
    objects = manifests()
    config = find(objects, "ConfigMap", "accounts-config")
    config["data"]["AMQP_URL"] = "amqp://x"  # typo of AMQP_URI
    config["data"]["SMTP_HOST"] = "smtp"  # notify's, not accounts'
    config["data"]["ACCOUNTS_LOG_LEVEL"] = "DEBUG"  # a valid prefixed override
    (container,) = pod_spec(find(objects, "Deployment", "accounts"))["containers"]
    container.setdefault("env", []).append({"name": "NOTIFY_LOG_LEVEL", "value": "DEBUG"})
    deployment = find(objects, "Deployment", "accounts")
    assert unknown_variables(objects, deployment, "accounts") == {
        "AMQP_URL",
        "SMTP_HOST",
        "NOTIFY_LOG_LEVEL",
    }


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_a_service_needs_in_production_is_set(service):
    objects = manifests()
    (container,) = pod_spec(find(objects, "Deployment", service))["containers"]
    env = environment(objects, container)
    # Without these the service would refuse to start (production: chassis.secrets).
    needed = {"AMQP_URI", "DATABASE_URL", "HTTP_HOST", "HTTP_PORT"}
    if service == TOKEN_ISSUER:
        needed |= {"DATA_KEY", "ADMIN_EMAIL", "ADMIN_PASSWORD", "JWT_PRIVATE_KEY_FILE",
                   "JWT_PREVIOUS_KEY_FILE", "PORTAL_URL"}  # fmt: skip
    else:
        needed |= {"JWT_JWKS_URL"}
    if service == "notify":
        needed |= {"SMTP_HOST", "SMTP_PORT"}
    assert needed <= set(env), f"{service} lacks {sorted(needed - set(env))}"


# --- the two-phase apply of docs/deploying.md -----------------------------------------------

COMPONENT = "app.kubernetes.io/component"
FIRST_PHASE = {"config", "migration", "topology"}  # -l 'app.kubernetes.io/component in (...)'


def first_phase(objects: list[dict]) -> list[dict]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get(COMPONENT) in FIRST_PHASE]


def test_the_first_phase_holds_the_jobs_and_all_they_need_and_no_service():
    objects = manifests()
    selected = first_phase(objects)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in selected}
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert jobs and all(("Job", job["metadata"]["name"]) in kinds for job in jobs)
    # The generated Secrets carry the first phase's label too.
    labels = kustomization(PRODUCTION)["generatorOptions"]["labels"]
    assert labels[COMPONENT] in FIRST_PHASE
    kinds |= {("Secret", name) for name in secret_generator()}
    for job in jobs:
        for container in pod_spec(job)["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert (kind, ref["name"]) in kinds, f"{job['metadata']['name']} needs {ref}"
    assert ("Namespace", kustomization(BASE)["namespace"]) in kinds
    # the network policies are in place before the Jobs run: they let them reach what they set up
    network = {o["metadata"]["name"] for o in objects if o["kind"] == "NetworkPolicy"}
    assert network and network <= {name for kind, name in kinds if kind == "NetworkPolicy"}
    assert not [o for o in selected if o["kind"] in ("Deployment", "Service")]


# --- secrets, pods, the network: safe as shipped --------------------------------------------


def test_no_secret_is_shipped_the_overlay_makes_them_from_generated_git_ignored_files():
    for folder in (BASE, PRODUCTION):
        assert not [o for o in manifests(folder) if o["kind"] == "Secret"], folder.name
        for path in folder.glob("*.yaml"):
            text = path.read_text().lower()
            assert "replace_me" not in text and "changeme" not in text, path.name
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/k8s/overlays/production/secrets/" in ignored
    folder = generated_folder()
    for generator in secret_generator().values():
        for path in [*generator.get("envs", []), *generator.get("files", [])]:
            assert Path(path).parts[0] == "secrets", path
            assert (folder / Path(path).relative_to("secrets")).is_file(), path
    assert oct((folder / "accounts.env").stat().st_mode & 0o777) == "0o600"
    assert oct((folder / "jwt" / "signing.pem").stat().st_mode & 0o777) == "0o600"


def test_every_secret_a_pod_reads_is_generated():
    objects = manifests()
    generated_names = set(secret_generator())
    for workload, _ in workloads(objects):
        spec = pod_spec(workload)
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in generated_names
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in generated_names


@pytest.mark.parametrize("service", [*SERVICES, *FRONTS])
def test_every_service_starts_in_production_on_what_the_operator_generates(service, monkeypatch):
    objects = manifests()
    deployment = find(objects, "Deployment", service)
    (container,) = pod_spec(deployment)["containers"]
    env = environment(objects, container)
    # the mounted key files, where the generator wrote them
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    for volume in pod_spec(deployment).get("volumes", []):
        if "secret" in volume:
            files = generated_secret(volume["secret"]["secretName"])
            for name, value in list(env.items()):
                for file_name, path in files.items():
                    if value == f"{mounts[volume['name']]}/{file_name}":
                        env[name] = path
    for name in [n for n in os.environ if n.startswith(("JWT_", "ACCOUNTS_", "ADMIN_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PLATFORM_ENV", "production")
    assert [str(r) for r in secrets.refusals(service)] == []


def test_every_pod_runs_with_the_default_seccomp_profile_and_no_api_token():
    for workload, _ in workloads(manifests()):
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name


def test_the_signing_key_is_mounted_into_accounts_alone():
    """Beside each workload's own settings Secret (`<name>-secrets`, read through SECRETS_DIR)."""
    objects = manifests()
    for workload, service in workloads(objects):
        spec = pod_spec(workload)
        secrets_mounted = [
            v for v in spec.get("volumes", [])
            if "secret" in v and not v["secret"]["secretName"].endswith("-secrets")
        ]  # fmt: skip
        if workload["kind"] == "Deployment" and service == TOKEN_ISSUER:
            (volume,) = secrets_mounted
            assert volume["secret"]["secretName"] == "accounts-jwt"
            (container,) = spec["containers"]
            env = environment(objects, container)
            mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
            assert mount["readOnly"] is True
            for name in ("JWT_PRIVATE_KEY_FILE", "JWT_PREVIOUS_KEY_FILE"):
                assert env[name].startswith(mount["mountPath"] + "/")
            assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
        else:
            assert not secrets_mounted, workload["metadata"]["name"]


def policies() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in manifests() if o["kind"] == "NetworkPolicy"}


def egress_ports(policy: dict) -> set[int]:
    return {p["port"] for rule in policy["spec"].get("egress", []) for p in rule.get("ports", [])}


def test_everything_is_denied_but_what_the_network_policies_allow():
    found = policies()
    deny = found["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    assert egress_ports(found["dns"]) == {53}
    for service in SERVICES:
        policy = found[service]
        assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": service}
        api, operations = policy["spec"]["ingress"]
        assert "from" not in api and [p["port"] for p in api["ports"]] == [PORTS[service]]
        assert [p["port"] for p in operations["ports"]] == [PORTS[service] + 1000]
        (prometheus,) = operations["from"]
        assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
        expected = {5672, 5432} | ({PORTS[TOKEN_ISSUER]} if service != TOKEN_ISSUER else set())
        if service == "notify":
            expected |= {25, 465, 587, 443, 80}  # the mail relay, webhooks
        assert egress_ports(policy) == expected, service
    assert egress_ports(found["migrations"]) == {5432}
    assert egress_ports(found["topology"]) == {5672}
    # the portal: its pages in, the services' APIs out, and nothing else
    portal = found["portal"]["spec"]
    assert [p["port"] for p in portal["ingress"][0]["ports"]] == [PORTS["portal"]]
    upstreams = ("accounts", "consulting", "matching", "notify", "activities", "insights")
    assert egress_ports(found["portal"]) == {PORTS[s] for s in upstreams}


def test_webhooks_reach_the_internet_but_not_the_clusters_networks():
    (webhooks,) = [r for r in policies()["notify"]["spec"]["egress"]
                   if {p["port"] for p in r.get("ports", [])} == {443, 80}]  # fmt: skip
    (target,) = webhooks["to"]
    assert target["ipBlock"]["cidr"] == "0.0.0.0/0"
    excluded = [ipaddress.ip_network(n) for n in target["ipBlock"]["except"]]
    for inside in ("10.1.2.3", "172.20.0.5", "192.168.1.1", "169.254.169.254", "127.0.0.1"):
        assert any(ipaddress.ip_address(inside) in n for n in excluded), inside


def test_matching_leaves_its_replica_count_to_its_autoscaler():
    objects = manifests()
    assert "replicas" not in find(objects, "Deployment", "matching")["spec"]
    assert "matching" not in {r["name"] for r in kustomization(PRODUCTION)["replicas"]}


def test_secrets_are_files_read_through_secrets_dir_never_environment_variables():
    """Each workload's Secret is mounted read-only as files at SECRETS_DIR (chassis.settings
    reads a setting the environment does not set from there), readable by its group only."""
    objects = manifests()
    for workload, _ in workloads(objects):
        spec = pod_spec(workload)
        for container in spec["containers"]:
            assert not [s for s in container.get("envFrom", []) if "secretRef" in s]
            assert not [
                e for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
            ]
        settings = [v for v in spec.get("volumes", []) if v["name"] == "settings"]
        for volume in settings:
            assert volume["secret"]["defaultMode"] == 0o440
            assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
