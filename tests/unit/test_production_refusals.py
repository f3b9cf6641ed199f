"""In production every service refuses to start on an unsafe secret: each kind of bad secret,
one test each, as `python -m chassis.run <service>` meets it (exit status 1, one line naming the
variable and what is wrong, no traceback), and the rules behind them (chassis.secrets).

The processes stop before they connect to anything, so no broker or database is needed; they
are started together, once, and each test reads what its own said."""

import base64
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chassis import secrets
from chassis.keys import DEVELOPMENT_FOLDER, development_keys, generate
from chassis.settings import FRONTS, SERVICES, TOKEN_ISSUER
from services.accounts.settings import DEVELOPMENT_ADMIN, DEVELOPMENT_DATA_KEY

ROOT = Path(__file__).resolve().parents[2]
GOOD_PASSWORD = "vK3-tq9Lw2xR8mZp4sYb7nH"
TYPED_KEY = b"my-own-typed-key-32-bytes-long!!"  # 32 bytes, but not random ones


def good_environment(service: str, keys: Path) -> dict[str, str]:
    """Settings a production start accepts (the broker and database are never reached)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLATFORM_ENV": "production"}
    if service in FRONTS:  # no broker, no database, no token keys
        return {**env, "SESSION_SECRET": GOOD_PASSWORD * 2}
    env |= {
        "AMQP_URI": f"amqp://{service}:{GOOD_PASSWORD}@127.0.0.1:9/returnee-platform",
        "DATABASE_URL": f"postgresql://{service}:{GOOD_PASSWORD}@127.0.0.1:9/{service}",
    }
    if service == TOKEN_ISSUER:
        env |= {
            "JWT_PRIVATE_KEY_FILE": str(keys / "signing.pem"),
            "DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
            "ADMIN_EMAIL": "admin@station.example",
            "ADMIN_PASSWORD": GOOD_PASSWORD,
        }
    else:
        env["JWT_JWKS_URL"] = "http://accounts:8001/.well-known/jwks.json"
    return env


def _weak_rsa_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip


def cases(keys: Path) -> dict[str, tuple[str, dict, str]]:
    """name: (service, what changes in the good environment, what the one line says)."""
    development_signing, development_jwks = development_keys()
    return {
        # missing
        "signing key missing": ("accounts", {"JWT_PRIVATE_KEY_FILE": None},
                                "JWT_PRIVATE_KEY_FILE is missing"),
        "DATA_KEY missing": ("accounts", {"DATA_KEY": None}, "DATA_KEY is missing"),
        "ADMIN_PASSWORD missing": ("accounts", {"ADMIN_PASSWORD": None},
                                   "ADMIN_PASSWORD is missing"),
        "broker URL missing": ("accounts", {"AMQP_URI": None}, "AMQP_URI is missing"),
        "public keys missing": ("consulting", {"JWT_JWKS_URL": None}, "JWT_JWKS_URL is missing"),
        "SMTP password missing": ("notify", {"SMTP_USERNAME": "platform"},
                                  "SMTP_PASSWORD is missing"),
        "SMS gateway key missing": ("notify", {"SMS_GATEWAY": "aliyun",
                                               "ALIYUN_SMS_ACCESS_KEY_ID": "LTAI5tExampleKeyId"},
                                    "ALIYUN_SMS_ACCESS_KEY_SECRET is missing"),
        "portal session secret missing": ("portal", {"SESSION_SECRET": None},
                                          "SESSION_SECRET is missing"),
        # placeholders
        "DATA_KEY placeholder": ("accounts", {"DATA_KEY": "REPLACE_ME"},
                                 "DATA_KEY is a placeholder"),
        "ADMIN_PASSWORD placeholder": ("accounts", {"ADMIN_PASSWORD": "changeme123"},
                                       "ADMIN_PASSWORD is a placeholder"),
        "portal session secret placeholder": (
            "portal", {"SESSION_SECRET": "compose-local-portal-session-secret-replace-me"},
            "SESSION_SECRET is a placeholder",
        ),
        "database password placeholder": (
            "matching",
            {"DATABASE_URL": "postgresql://matching:REPLACE_ME@postgres:5432/matching"},
            "DATABASE_URL's password is a placeholder",
        ),
        # development values shipped in the repository
        "development DATA_KEY": ("accounts", {"DATA_KEY": DEVELOPMENT_DATA_KEY},
                                 "DATA_KEY is a development value"),
        "development ADMIN_PASSWORD": (
            "accounts", {"ADMIN_PASSWORD": DEVELOPMENT_ADMIN["ADMIN_PASSWORD"]},
            "ADMIN_PASSWORD is a development value",
        ),
        "development broker password": (
            "notify", {"AMQP_URI": "amqp://guest:guest@rabbitmq:5672/"},
            "AMQP_URI's password is a development value",
        ),
        "development broker password on a cluster's second node": (
            "notify",
            {"AMQP_URI": "amqp://notify:k7Vq-2mXr-9TzL@r1:5672/;amqp://guest:guest@r2:5672/"},
            "AMQP_URI's password of node 2 is a development value",
        ),
        "development signing key": ("accounts", {"JWT_PRIVATE_KEY_FILE": str(development_signing)},
                                    "JWT_PRIVATE_KEY_FILE is a development key"),
        "development public keys": ("matching", {"JWT_JWKS_URL": None,
                                                 "JWT_JWKS_FILE": str(development_jwks)},
                                    "JWT_JWKS_FILE holds the development keys"),
        "a shared HS256 secret": ("consulting", {"JWT_SECRET": "a-long-shared-secret-of-old"},
                                  "JWT_SECRET is set"),
        # too weak
        "weak signing key": ("accounts",
                             {"JWT_PRIVATE_KEY_FILE": str(keys / "weak.pem")},
                             "is an RSA key of 1024 bits, too weak"),
        "weak DATA_KEY": ("accounts",  # 32 bytes, but typed
                          {"DATA_KEY": base64.b64encode(TYPED_KEY).decode()},
                          "DATA_KEY is too weak"),
        "short DATA_KEY": ("accounts", {"DATA_KEY": base64.b64encode(os.urandom(16)).decode()},
                           "DATA_KEY is 16 bytes, not 32"),
        "weak portal session secret": ("portal", {"SESSION_SECRET": "short-Secret-1"},
                                       "SESSION_SECRET is too weak"),
        "weak ADMIN_PASSWORD": ("accounts", {"ADMIN_PASSWORD": "admin12"},
                                "ADMIN_PASSWORD is too weak: Must be at least 10 characters long."),
        # a verifier holding what only the issuer may
        "a signing key on a verifier": ("notify",
                                        {"JWT_PRIVATE_KEY_FILE": str(keys / "signing.pem")},
                                        "JWT_PRIVATE_KEY_FILE is set, but only accounts signs"),
    }  # fmt: skip


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    generate(folder / "signing.pem")
    _weak_rsa_key(folder / "weak.pem")
    return folder


def start(service: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chassis.run", service],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refusals_with(service: str, env: dict, monkeypatch) -> list[str]:
    """What `chassis.run` would refuse `service` for in `env` (each said in one line)."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    return [str(refusal) for refusal in secrets.refusals(service)]


@pytest.mark.parametrize("name", list(cases(Path("/nonexistent"))))
def test_each_unsafe_secret_is_refused_with_what_is_wrong(name, keys, monkeypatch):
    service, changes, said = cases(keys)[name]
    env = {**good_environment(service, keys), **changes}
    (refusal,) = refusals_with(service, env, monkeypatch)
    assert said in refusal


# As `python -m chassis.run` meets them: a kind for each service (the processes start
# together; each takes a fraction of a second, as it stops before connecting to anything).
STARTS = ("weak DATA_KEY", "public keys missing", "development public keys",
          "development broker password", "portal session secret placeholder")  # fmt: skip


@pytest.fixture(scope="module")
def outcomes(keys) -> dict[str, subprocess.CompletedProcess]:
    found = cases(keys)

    def run(name):
        service, changes, _ = found[name]
        env = {**good_environment(service, keys), **changes}
        return name, start(service, {k: v for k, v in env.items() if v is not None})

    with ThreadPoolExecutor(max_workers=len(STARTS)) as pool:
        return dict(pool.map(run, STARTS))


@pytest.mark.parametrize("name", STARTS)
def test_a_production_start_refuses_in_one_line_with_a_non_zero_status(name, outcomes, keys):
    service, _, said = cases(keys)[name]
    outcome = outcomes[name]
    output = (outcome.stdout + outcome.stderr).strip()
    assert outcome.returncode == 1, output
    assert "Traceback" not in output
    (line,) = output.splitlines()
    assert f"{service} refuses to start: " in line and said in line, line


@pytest.mark.parametrize("service", [*SERVICES, *FRONTS])
def test_the_good_environment_has_nothing_to_refuse(service, keys, monkeypatch):
    # What the cases above change one thing of: refused for that one thing alone.
    for name in [n for n in os.environ if n.startswith(("JWT_", "ACCOUNTS_", "ADMIN_"))]:
        monkeypatch.delenv(name)
    for name, value in good_environment(service, keys).items():
        monkeypatch.setenv(name, value)
    assert secrets.refusals(service) == []


def test_development_starts_whatever_the_secrets(keys):
    # No broker here: the start goes past the refusals and then waits for it; a moment is
    # enough to see it did not refuse.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLATFORM_ENV": "development",
           "AMQP_URI": "amqp://guest:guest@127.0.0.1:9/", "HTTP_PORT": "0"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "chassis.run", "matching"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    try:
        process.wait(timeout=1.5)
    except subprocess.TimeoutExpired:
        pass
    finally:
        process.kill()
        output = process.communicate()[0]
    assert "refuses to start" not in output


def test_an_unknown_environment_is_refused_too():
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PLATFORM_ENV": "staging"}
    outcome = start("accounts", env)
    assert outcome.returncode == 1
    (line,) = (outcome.stdout + outcome.stderr).strip().splitlines()
    assert "PLATFORM_ENV is 'staging'; it must be one of development, production" in line


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("REPLACE_ME", True),
        ("replace-me-please", True),
        ("ChangeMe!", True),
        ("<your password>", True),
        ("xxxxxxxx", True),
        ("secret", True),
        ("vK3-tq9Lw2xR8mZp4sYb7nH", False),
        (base64.b64encode(os.urandom(32)).decode(), False),
    ],
)
def test_placeholders_are_told_from_secrets(value, placeholder):
    assert secrets.placeholder(value) is placeholder


def test_the_development_folder_is_the_checkouts_own():
    assert DEVELOPMENT_FOLDER == ROOT / ".dev" / "keys"
    assert ".dev/" in (ROOT / ".gitignore").read_text().splitlines()
