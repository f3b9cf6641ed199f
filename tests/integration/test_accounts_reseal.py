"""`python -m services.accounts.reseal` against the real PostgreSQL: ID documents sealed under
one data key, the key rotated, the command run as an operator runs it; afterwards every value is
recorded under the new key and opens with it alone, so the old key can be retired."""

import base64
import os
import subprocess
import sys

import pytest

from services.accounts.sealing import Sealer, key_id
from tests.integration.test_accounts import registration
from tests.support import query

KEY_A = base64.b64encode(b"first-data-key-for-reseal-test!!").decode()
KEY_B = base64.b64encode(b"second-data-key-for-reseal-test!").decode()


def _reseal(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "ACCOUNTS_DATABASE_URL": database_url,
        "ACCOUNTS_DATA_KEYS_PREVIOUS": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.accounts.reseal", *args],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _sealed(database_url: str) -> list[dict]:
    return query(
        database_url,
        "SELECT account_id::text AS account_id, id_document, id_document_key FROM returnees"
        " WHERE id_document IS NOT NULL ORDER BY account_id",
    )


@pytest.fixture
def accounts_under_key_a(monkeypatch, config_for, container_factory):
    from services.accounts.service import AccountsService

    monkeypatch.setenv("ACCOUNTS_DATA_KEY", KEY_A)
    monkeypatch.delenv("ACCOUNTS_DATA_KEYS_PREVIOUS", raising=False)
    config = config_for("accounts")
    container = container_factory(AccountsService, config)
    container.start()
    return container, config["DATABASE_URL"]


def test_reseal_moves_every_id_document_to_the_new_key_and_the_old_one_can_go(
    accounts_under_key_a,
):
    import requests

    from tests.support import service_url

    container, database_url = accounts_under_key_a
    numbers = {}
    for n in range(5):
        body = registration(id_document={"kind": "passport", "number": f"E{n:08d}"})
        response = requests.post(service_url(container) + "/returnees", json=body)
        assert response.status_code == 201, response.text
        numbers[response.json()["id"]] = f"passport:E{n:08d}"
    requests.post(service_url(container) + "/returnees", json=registration())  # none to seal
    before = _sealed(database_url)
    assert {row["id_document_key"] for row in before} == {key_id(base64.b64decode(KEY_A))}
    # One value from before key ids were recorded: opened with whichever known key fits.
    query(
        database_url,
        "UPDATE returnees SET id_document_key = NULL WHERE account_id = %s",
        (before[0]["account_id"],),
    )

    done = _reseal(
        database_url, "--batch", "2",
        ACCOUNTS_DATA_KEY=KEY_B, ACCOUNTS_DATA_KEYS_PREVIOUS=KEY_A,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    key_b = key_id(base64.b64decode(KEY_B))
    assert f"re-sealed 5 ID document(s) under key {key_b}" in done.stdout
    after = _sealed(database_url)
    assert {row["id_document_key"] for row in after} == {key_b}
    only_b = Sealer(KEY_B)  # key A retired
    for row in after:
        assert (
            only_b.open(row["id_document"], row["account_id"], row["id_document_key"])
            == (numbers[row["account_id"]])
        )
    with pytest.raises(Exception):  # noqa: B017 (what key A alone can no longer open)
        Sealer(KEY_A).open(after[0]["id_document"], after[0]["account_id"])

    again = _reseal(database_url, ACCOUNTS_DATA_KEY=KEY_B)  # key A gone from the settings
    assert again.returncode == 0, again.stderr
    assert "re-sealed 0 ID document(s)" in again.stdout
