"""A client generated from the OpenAPI document a running service serves, by a generator
integrators use (openapi-python-client, pinned in the dev extras), calls that service: its
typed models read the answers, errors included, so the document is one a client can be built on.
"""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.integration.test_accounts import PASSWORD, accounts, registration  # noqa: F401
from tests.validators.test_integrator_tools import NOT_GENERATED

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
CONFIG = Path(__file__).resolve().parents[1] / "validators" / "openapi-python-client.yaml"


def generated_client(url: str, folder: Path, package: str):
    document = folder / "openapi.json"
    document.write_text(requests.get(f"{url}/openapi.json", timeout=10).text)
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--meta", "none",
         "--config", str(CONFIG),
         "--output-path", str(folder / package)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation generated but those it cannot (tests/validators): it says which.
    left_out = set(re.findall(r"WARNING parsing (\S+ \S+) within", result.stdout + result.stderr))
    assert left_out == NOT_GENERATED.get(package.removesuffix("_client"), set()), result.stdout
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(folder))


def test_a_generated_client_registers_signs_in_and_reads_consents(accounts, tmp_path):  # noqa: F811
    client_package = generated_client(accounts.url, tmp_path, "accounts_client")
    api = importlib.import_module("accounts_client.api.returnees")
    importlib.import_module("accounts_client.api.auth.issue_token")
    importlib.import_module("accounts_client.api.returnees.register")
    importlib.import_module("accounts_client.api.returnees.read_consents")
    importlib.import_module("accounts_client.api.returnees.read_returnee")
    models = importlib.import_module("accounts_client.models")
    auth = importlib.import_module("accounts_client.api.auth")

    client = client_package.Client(base_url=accounts.url, raise_on_unexpected_status=True)
    body = registration()
    created = api.register.sync(client=client, body=models.Registration.from_dict(body))
    assert isinstance(created, models.ReturneeOut), created
    assert created.email == body["email"]

    token = auth.issue_token.sync(
        client=client, body=models.TokenRequest(email=body["email"], password=PASSWORD)
    )
    assert isinstance(token, models.TokenOut), token
    signed_in = client_package.AuthenticatedClient(
        base_url=accounts.url, token=token.access_token, raise_on_unexpected_status=True
    )
    consents = api.read_consents.sync(client=signed_in, returnee_id=str(created.id))
    assert isinstance(consents, models.ConsentsOut), consents
    assert consents.current["matching"].granted in (True, False)
    assert {change.purpose for change in consents.history} == set(
        consents.current.additional_properties
    )

    # A documented error comes back as the typed error model, not as an unexpected status.
    taken = api.register.sync_detailed(client=client, body=models.Registration.from_dict(body))
    assert taken.status_code == 409
    assert isinstance(taken.parsed, models.Error) and taken.parsed.error
    hidden = api.read_returnee.sync_detailed(client=client, returnee_id=str(created.id))
    assert hidden.status_code == 401 and isinstance(hidden.parsed, models.Error)
