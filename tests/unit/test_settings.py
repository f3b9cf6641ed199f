"""Every variable a service reads is listed where deployments look for it."""

import re
from pathlib import Path

from chassis.settings import DEFAULTS, ENVIRONMENT, SERVICE_ENVIRONMENT, SERVICES, setting

ROOT = Path(__file__).resolve().parents[2]
READ = re.compile(r"""setting\(\s*(?:"(\w+)"|SERVICE|self\.\w+)\s*,\s*"([A-Z_]+)\"""")


def test_every_setting_the_code_reads_is_declared():
    found = 0
    for service in SERVICES:
        declared = ENVIRONMENT | SERVICE_ENVIRONMENT[service]
        for path in (ROOT / "services" / service).rglob("*.py"):
            for match in READ.finditer(path.read_text()):
                assert match.group(2) in declared, f"{path}: {match.group(2)} is not declared"
                found += 1
    assert found >= 4  # ADMIN_EMAIL, ADMIN_PASSWORD, DATA_KEY, SLA_CHECK_SECONDS at least
    from services.notify.delivery import SETTINGS

    assert set(SETTINGS) <= SERVICE_ENVIRONMENT["notify"]


def test_prefixed_setting_beats_shared_and_default(monkeypatch):
    monkeypatch.delenv("MAX_WORKERS", raising=False)
    assert setting("matching", "MAX_WORKERS") == DEFAULTS["MAX_WORKERS"]
    monkeypatch.setenv("MAX_WORKERS", "20")
    assert setting("matching", "MAX_WORKERS") == "20"
    monkeypatch.setenv("MATCHING_MAX_WORKERS", "30")
    assert setting("matching", "MAX_WORKERS") == "30"
    assert setting("notify", "MAX_WORKERS") == "20"


def test_every_seed_refers_to_the_reference_organizations():
    from services.accounts.seed import reference
    from services.matching import seed as matching_seed

    organizations = {o["id"] for o in reference()["organizations"]}
    assert {o[0] for o in matching_seed.ORGANIZATIONS} == organizations
    assert {r["organization_id"] for r in matching_seed.RESOURCES} <= organizations
