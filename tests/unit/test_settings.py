"""Settings: the chassis reads its own, each service declares its own, one function reads them."""

import re
from pathlib import Path

import pytest

from chassis.settings import DEFAULTS, SERVICES, service_settings, setting
from tests.support import service_environment

ROOT = Path(__file__).resolve().parents[2]


def test_services_read_their_settings_only_through_their_declaration():
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"(?<![_.\w])setting\(", text), f"{path} reads a setting directly"
            assert "os.environ" not in text and "getenv" not in text, path
        assert service_environment(service), f"{service} declares no settings"


def test_the_chassis_names_no_service_setting():
    chassis_settings = (ROOT / "chassis" / "settings.py").read_text()
    for service in SERVICES:
        for name in service_environment(service):
            assert name not in chassis_settings, f"chassis/settings.py names {service}'s {name}"


def test_service_settings_take_config_then_prefixed_then_shared_then_default(monkeypatch):
    declared = {"SLA_CHECK_SECONDS": "15"}
    monkeypatch.delenv("SLA_CHECK_SECONDS", raising=False)
    monkeypatch.delenv("CONSULTING_SLA_CHECK_SECONDS", raising=False)
    assert service_settings("consulting", declared) == {"SLA_CHECK_SECONDS": "15"}
    monkeypatch.setenv("SLA_CHECK_SECONDS", "20")
    assert service_settings("consulting", declared)["SLA_CHECK_SECONDS"] == "20"
    monkeypatch.setenv("CONSULTING_SLA_CHECK_SECONDS", "30")
    assert service_settings("consulting", declared)["SLA_CHECK_SECONDS"] == "30"
    config = {"SLA_CHECK_SECONDS": 1}
    assert service_settings("consulting", declared, config)["SLA_CHECK_SECONDS"] == "1"


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


def test_a_setting_the_environment_leaves_out_is_read_from_secrets_dir(tmp_path, monkeypatch):
    """How Kubernetes mounts a Secret: one file per key (deploy/k8s)."""
    from chassis.settings import configured, setting

    (tmp_path / "DATABASE_URL").write_text("postgresql://from-a-file/db\n")
    (tmp_path / "ACCOUNTS_ADMIN_PASSWORD").write_text("file-password")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ACCOUNTS_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    assert setting("accounts", "DATABASE_URL") == "postgresql://from-a-file/db"
    assert setting("accounts", "ADMIN_PASSWORD") == "file-password"
    assert configured("accounts", "ADMIN_PASSWORD") and not configured("accounts", "DATA_KEY")
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-the-environment/db")
    assert setting("accounts", "DATABASE_URL") == "postgresql://from-the-environment/db"


def test_production_serves_operations_on_a_port_of_their_own(monkeypatch):
    from chassis.settings import PORTS, SettingError, nameko_config, operations_address

    monkeypatch.delenv("OPERATIONS_PORT", raising=False)
    monkeypatch.delenv("CONSULTING_OPERATIONS_PORT", raising=False)
    monkeypatch.setenv("PLATFORM_ENV", "production")
    assert operations_address("consulting") == f"127.0.0.1:{PORTS['consulting'] + 1000}"
    assert operations_address("portal") == ""  # no metrics, no reasons: nothing to keep off
    monkeypatch.setenv("CONSULTING_OPERATIONS_HOST", "0.0.0.0")
    monkeypatch.setenv("CONSULTING_OPERATIONS_PORT", "9102")
    assert operations_address("consulting") == "0.0.0.0:9102"
    monkeypatch.setenv("CONSULTING_OPERATIONS_PORT", str(PORTS["consulting"]))
    with pytest.raises(SettingError, match="OPERATIONS_PORT is 8002, the HTTP port"):
        operations_address("consulting")

    monkeypatch.setenv("PLATFORM_ENV", "development")
    monkeypatch.delenv("CONSULTING_OPERATIONS_PORT")
    assert nameko_config("consulting")["OPERATIONS_ADDRESS"] == ""  # all on the HTTP port
    monkeypatch.setenv("CONSULTING_OPERATIONS_PORT", "9102")
    assert nameko_config("consulting")["OPERATIONS_ADDRESS"] == "0.0.0.0:9102"


def test_cpu_niceness_is_a_whole_number_from_0_to_19(monkeypatch):
    from chassis.settings import SettingError, nameko_config

    monkeypatch.setenv("PLATFORM_ENV", "development")
    for name in ("CPU_NICENESS", "INSIGHTS_CPU_NICENESS", "ACCOUNTS_CPU_NICENESS"):
        monkeypatch.delenv(name, raising=False)
    assert nameko_config("insights")["CPU_NICENESS"] == 0  # the default: as it was started
    monkeypatch.setenv("INSIGHTS_CPU_NICENESS", "10")
    assert nameko_config("insights")["CPU_NICENESS"] == 10
    assert nameko_config("accounts")["CPU_NICENESS"] == 0
    for wrong in ("-5", "20", "high", ""):
        monkeypatch.setenv("INSIGHTS_CPU_NICENESS", wrong)
        with pytest.raises(SettingError, match="CPU_NICENESS is .* from 0 \\(the default\\) to 19"):
            nameko_config("insights")


def test_the_topology_step_refuses_a_wrong_setting_in_one_line_before_the_broker(
    monkeypatch, capsys
):
    from deploy.topology import main

    monkeypatch.setenv("PLATFORM_ENV", "development")
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@127.0.0.1:1/")  # nothing answers there
    monkeypatch.setenv("INSIGHTS_CPU_NICENESS", "-5")
    assert main(["insights"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "broker topology not declared: CPU_NICENESS is '-5'; it must be a whole number from 0"
        " (the default) to 19\n"
    )


def test_the_backfill_command_refuses_a_wrong_setting_in_one_line_before_a_database(
    monkeypatch, capsys
):
    from services.insights.backfill import main

    monkeypatch.setenv("PLATFORM_ENV", "development")
    monkeypatch.setenv("INSIGHTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/insights")
    monkeypatch.setenv("CONSULTING_CPU_NICENESS", "high")
    assert main(["accounts", "consulting"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "nothing counted: CPU_NICENESS is 'high'; it must be a whole number from 0"
        " (the default) to 19\n"
    )


def test_a_batch_linger_is_refused_out_of_range_in_one_line(monkeypatch):
    from chassis.settings import SettingError, nameko_config

    monkeypatch.setenv("PLATFORM_ENV", "development")
    config = nameko_config("insights")
    assert (config["EVENT_BATCH_LINGER_MS"], config["BACKGROUND_BATCH_LINGER_MS"]) == (2.0, 500.0)
    monkeypatch.setenv("INSIGHTS_BACKGROUND_BATCH_LINGER_MS", "0")
    assert nameko_config("insights")["BACKGROUND_BATCH_LINGER_MS"] == 0.0
    for name in ("EVENT_BATCH_LINGER_MS", "BACKGROUND_BATCH_LINGER_MS"):
        for wrong in ("-1", "50000", "inf", "nan", "soon", ""):
            monkeypatch.setenv(f"INSIGHTS_{name}", wrong)
            with pytest.raises(SettingError, match=f"{name} is .*milliseconds from 0 to 10,000"):
                nameko_config("insights")
        monkeypatch.delenv(f"INSIGHTS_{name}")


def test_only_a_subscriber_taking_batches_may_be_background():
    from chassis.events import on_event

    def use(event, db):
        return None

    with pytest.raises(ValueError, match="background needs batchable"):
        on_event("accounts", "returnee.registered", use=use, units=True, background=True)
    assert on_event("accounts", "returnee.registered", use=use, background=True) is not None
