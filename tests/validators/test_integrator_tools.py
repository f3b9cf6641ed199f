"""The validators integrators run on what the platform publishes, run here so they find nothing
first: each tool is pinned (package.json/package-lock.json for npm's, pyproject.toml for
Python's) and installed by `make tools`; a finding of any of them fails its test.

    Redocly CLI, Spectral   lint every service's OpenAPI document (rulesets: redocly.yaml,
                            .spectral.yaml; each rule turned off there says why)
    openapi-spec-validator  the same documents against the OpenAPI 3.1 specification
    openapi-python-client   generates a client of every operation of every service
    AsyncAPI CLI            validates contracts/asyncapi.yaml
    check-jsonschema        docker-compose.yml against the Compose specification's schema
    hadolint                every Dockerfile
    kubernetes-validate     the Kubernetes manifests (strict: no field the API does not know)
    checkov                 the same manifests (skips, each with its reason: .checkov.yaml)

The CloudEvents SDK reads every example event in tests/unit/test_contract_peers.py.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from chassis.loader import service_class
from chassis.openapi import openapi_document
from chassis.settings import FRONTS, SERVICES
from contracts.asyncapi import DOCUMENT_PATH
from tests.validators.manifests import rendered_manifests

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent
CHECKOV = VENV_BIN.parent / "checkov" / "bin" / "checkov"
APIS = [s for s in SERVICES if s not in FRONTS]
TIMEOUT = 240


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.name} is not installed: run `make tools`")
    return str(path)


def run(*command, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        # No telemetry, update checks or colours: nothing leaves the machine, output is plain.
        "REDOCLY_TELEMETRY": "off",
        "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        **(env or {}),
    }
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT
    )


def report(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def json_objects(text: str) -> list:
    """The JSON values a tool printed one after another (Redocly: one per file)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> dict[str, Path]:
    """Every service's OpenAPI document as it serves it at /openapi.json, written to a file."""
    folder = tmp_path_factory.mktemp("openapi")
    written = {}
    for service in APIS:
        path = folder / f"{service}.json"
        path.write_text(json.dumps(openapi_document(service_class(service)), indent=1))
        written[service] = path
    return written


@pytest.mark.parametrize("service", APIS)
def test_openapi_spec_validator(documents, service):
    validate(json.loads(documents[service].read_text()))


GENERATOR_CONFIG = Path(__file__).resolve().parent / "openapi-python-client.yaml"
# What openapi-python-client leaves out, and why. The batch imports' rows are objects of `Cell`s,
# a recursive union (a cell holds text, a number, a list or a record of cells, every text
# refusing U+0000, as the chassis does at any depth), which this generator cannot follow through
# a union; `station` is the client of those operations (docs/station.md).
NOT_GENERATED = {
    "accounts": {"POST /imports/organizations", "POST /imports/returnees"},
    "matching": {"POST /imports/resources"},
}


def test_openapi_python_client_generates_every_operation_of_every_service(documents, tmp_path):
    """A client generator leaves nothing out (tests/integration/test_generated_client.py calls
    a running service with such a client)."""
    for service, document in documents.items():
        result = run(
            tool(VENV_BIN / "openapi-python-client"), "generate", "--path", str(document),
            "--config", str(GENERATOR_CONFIG), "--meta", "none",
            "--output-path", str(tmp_path / f"{service}_client"),
            env={"PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )  # fmt: skip
        assert result.returncode == 0, report(result)
        output = result.stdout + result.stderr
        left_out = set(re.findall(r"WARNING parsing (\S+ \S+) within", output))
        assert left_out == NOT_GENERATED.get(service, set()), report(result)
        if not left_out:
            assert "Warning" not in output, report(result)


def test_redocly_lint_finds_nothing(documents):
    result = run(
        tool(NODE_BIN / "redocly"), "lint", "--config", str(ROOT / "redocly.yaml"),
        "--format", "json", *map(str, documents.values()),
    )  # fmt: skip
    assert result.returncode == 0, report(result)
    problems = [p for one in json_objects(result.stdout) for p in one["problems"]]
    assert problems == [], report(result)


def test_spectral_lint_finds_nothing(documents):
    result = run(
        tool(NODE_BIN / "spectral"), "lint", "--ruleset", str(ROOT / ".spectral.yaml"),
        "--fail-severity", "hint", "--format", "text", *map(str, documents.values()),
    )  # fmt: skip
    assert result.returncode == 0, report(result)
    assert result.stdout.strip() in ("", "No results with a severity of 'hint' or higher found!")


def test_asyncapi_cli_validates_the_document(tmp_path):
    # The CLI's anonymous metrics off, in a settings file of the test's own.
    metrics = tmp_path / "asyncapi-metrics.json"
    metrics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true"}))
    suppressed = yaml.safe_load((DOCUMENT_PATH.parent / "lint-asyncapi.yaml").read_text())
    flags = [f"--suppressWarnings={code}" for code in suppressed["suppressed"]]
    for document in sorted(DOCUMENT_PATH.parent.glob("asyncapi*.yaml")):
        result = run(
            tool(NODE_BIN / "asyncapi"), "validate", str(document), "--fail-severity", "warn",
            *flags, env={"ASYNCAPI_METRICS_CONFIG_PATH": str(metrics), "HOME": str(tmp_path)},
        )  # fmt: skip
        assert result.returncode == 0, report(result)
        assert "0 errors, 0 warnings" in result.stdout + result.stderr or (
            "is valid" in result.stdout + result.stderr and "warning" not in result.stdout
        ), report(result)


def test_compose_file_is_valid_against_the_compose_specification():
    # The schema check-jsonschema ships (vendored in the package: nothing is downloaded).
    result = run(
        tool(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
        "docker-compose.yml",
    )  # fmt: skip
    assert result.returncode == 0, report(result)


def dockerfiles() -> list[Path]:
    skipped = {"node_modules", ".venv"}
    return sorted(p for p in ROOT.rglob("*Dockerfile*") if not skipped & set(p.parts))


def test_hadolint_finds_nothing():
    assert dockerfiles()
    result = run(
        tool(VENV_BIN / "hadolint"), "--config", str(ROOT / ".hadolint.yaml"),
        "--failure-threshold", "style", *map(str, dockerfiles()),
    )  # fmt: skip
    assert result.returncode == 0, report(result)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("k8s")
    for name, objects in rendered_manifests().items():
        (folder / name).write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return folder


def test_kubernetes_validate_strict(manifests):
    files = sorted(map(str, manifests.glob("*.yaml")))
    result = run(tool(VENV_BIN / "kubernetes-validate"), "--strict", "--quiet", *files)
    assert result.returncode == 0, report(result)


def test_checkov_finds_nothing(manifests):
    result = run(
        tool(CHECKOV), "--config-file", str(ROOT / ".checkov.yaml"), "--directory",
        str(manifests), "--framework", "kubernetes", "--output", "json", "--quiet",
        env={"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )  # fmt: skip
    assert result.returncode == 0, report(result)
    found = json.loads(result.stdout)
    for framework in found if isinstance(found, list) else [found]:
        assert framework.get("results", {}).get("failed_checks", []) == [], report(result)
