"""The secrets of a deployment, generated: nothing secret is committed, and no deployment is made
from a placeholder (every service refuses to start on one, `chassis.secrets`).

python -m deploy.secrets compose [--force]
    `deploy/secrets/` (git-ignored): an env file per container of docker-compose.yml (broker and
    database passwords, accounts' DATA_KEY and ADMIN_PASSWORD, the portal's SESSION_SECRET) and
    `jwt/`, the token signing key accounts mounts. `make secrets` runs it.
python -m deploy.secrets kubernetes [FOLDER] [--force] [--broker-host H] [--database-host H]
    FOLDER (default `deploy/k8s/overlays/production/secrets/`, git-ignored): what the production
    overlay's secretGenerator makes the Secrets from (`<service>.env`, `portal.env`,
    `deployer.env`, `jwt/`),
    and what to give the broker and the database: `rabbitmq.env` (RABBITMQ_PASSWORD_<USER>, for
    `python -m deploy.rabbitmq.definitions --passwords-from-env`) and `postgres.sql` (each
    service's database user, owner of its database).

A file that exists is kept (a second run changes nothing; rotate keys with `python -m
chassis.keys rotate <folder>/jwt`); `--force` writes every file anew. Files are readable by their
owner only, in folders only the owner may enter; the compose key files are readable by all in
that folder, as the containers' own user must read their bind mounts.
"""

import argparse
import base64
import os
import secrets
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from chassis.keys import PREVIOUS_FILE, SIGNING_FILE, generate
from chassis.settings import SERVICES
from services.accounts.profile import password_problems

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FOLDER = ROOT / "deploy" / "secrets"
KUBERNETES_FOLDER = ROOT / "deploy" / "k8s" / "overlays" / "production" / "secrets"
VHOST = "returnee-platform"  # deploy/rabbitmq/definitions.json
BROKER_USERS = (*SERVICES, "deployer", "district-subscriber")
COMPOSE_ADMIN_EMAIL = "admin@station.example"  # docker-compose.yml


def password() -> str:
    """256 random bits in URL-safe characters (no quoting in a URL or an env file), with letters
    and digits as the password policy asks."""
    while True:
        candidate = secrets.token_urlsafe(32)
        if not password_problems(candidate):
            return candidate


def data_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Writer:
    def __init__(self, folder: Path, force: bool):
        self.folder = folder
        self.force = force
        self.written: list[str] = []

    def exists(self, name: str) -> bool:
        return (self.folder / name).exists() and not self.force

    def env(self, name: str, values: dict[str, str]) -> None:
        if self.exists(name):
            return
        text = "".join(f"{key}={value}\n" for key, value in values.items())
        self._write(name, text, 0o600)

    def text(self, name: str, text: str) -> None:
        if not self.exists(name):
            self._write(name, text, 0o600)

    def keys(self, mode: int) -> None:
        """`jwt/signing.pem` and `jwt/previous.pem`: the same key until the first rotation, so the
        previous key's file is always there to mount."""
        folder = self.folder / "jwt"
        signing, previous = folder / SIGNING_FILE, folder / PREVIOUS_FILE
        if not signing.exists() or self.force:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            generate(signing)
            shutil.copyfile(signing, previous)
            self.written += [f"jwt/{SIGNING_FILE}", f"jwt/{PREVIOUS_FILE}"]
        signing.chmod(mode)
        previous.chmod(mode)

    def _write(self, name: str, text: str, mode: int) -> None:
        path = self.folder / name
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as file:
            file.write(text)
        self.written.append(name)


def _existing(writer: Writer, name: str, key: str) -> str | None:
    """A value an env file already holds, so files generated at different times agree."""
    path = writer.folder / name
    if writer.force or not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1]
    return None


def compose(folder: Path = COMPOSE_FOLDER, force: bool = False) -> list[str]:
    writer = Writer(folder, force)
    broker = _existing(writer, "rabbitmq.env", "RABBITMQ_DEFAULT_PASS") or password()
    database = _existing(writer, "postgres.env", "POSTGRES_PASSWORD") or password()
    writer.env("rabbitmq.env", {"RABBITMQ_DEFAULT_USER": "platform",
                                "RABBITMQ_DEFAULT_PASS": broker})  # fmt: skip
    writer.env("postgres.env", {"POSTGRES_PASSWORD": database})
    amqp_uri = f"amqp://platform:{broker}@rabbitmq:5672/"
    writer.env("topology.env", {"AMQP_URI": amqp_uri})
    for service in SERVICES:
        values = {
            "AMQP_URI": amqp_uri,
            "DATABASE_URL": f"postgresql://postgres:{database}@postgres:5432/{service}",
        }
        if service == "accounts":
            values |= {"DATA_KEY": data_key(), "ADMIN_PASSWORD": password()}
        writer.env(f"{service}.env", values)
    writer.env("portal.env", {"SESSION_SECRET": password()})
    writer.keys(0o644)
    return writer.written


def kubernetes(
    folder: Path = KUBERNETES_FOLDER,
    force: bool = False,
    broker_host: str = "rabbitmq",
    database_host: str = "postgres",
) -> list[str]:
    writer = Writer(folder, force)
    broker = {user: _existing(writer, "rabbitmq.env", _broker_variable(user)) or password()
              for user in BROKER_USERS}  # fmt: skip
    writer.env("rabbitmq.env", {_broker_variable(user): broker[user] for user in BROKER_USERS})
    database = {}
    for service in SERVICES:
        url = _existing(writer, f"{service}.env", "DATABASE_URL")
        database[service] = (url and urlsplit(url).password) or password()
    writer.text(
        "postgres.sql",
        "-- Each service's database user, owner of its database (run as a superuser).\n"
        + "".join(
            f"CREATE ROLE {s} LOGIN PASSWORD '{database[s]}';\nALTER DATABASE {s} OWNER TO {s};\n"
            for s in SERVICES
        ),
    )
    for service in SERVICES:
        values = {
            "AMQP_URI": f"amqp://{service}:{broker[service]}@{broker_host}:5672/{VHOST}",
            "DATABASE_URL": (
                f"postgresql://{service}:{database[service]}@{database_host}:5432/{service}"
            ),
        }
        if service == "accounts":
            values |= {"DATA_KEY": data_key(), "ADMIN_PASSWORD": password()}
        writer.env(f"{service}.env", values)
    writer.env("portal.env", {"SESSION_SECRET": password()})
    writer.env(
        "deployer.env",
        {"AMQP_URI": f"amqp://deployer:{broker['deployer']}@{broker_host}:5672/{VHOST}"},
    )
    writer.keys(0o600)
    return writer.written


def _broker_variable(user: str) -> str:
    return "RABBITMQ_PASSWORD_" + user.upper().replace("-", "_")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", choices=["compose", "kubernetes"])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--force", action="store_true", help="write every file anew")
    parser.add_argument("--broker-host", default="rabbitmq")
    parser.add_argument("--database-host", default="postgres")
    args = parser.parse_args(argv)
    if args.target == "compose":
        folder = args.folder or COMPOSE_FOLDER
        written = compose(folder, args.force)
    else:
        folder = args.folder or KUBERNETES_FOLDER
        written = kubernetes(folder, args.force, args.broker_host, args.database_host)
    for name in written:
        print(f"wrote {folder / name}")
    if not written:
        print(f"{folder}: every file exists already (--force writes them anew)")
    elif args.target == "compose":
        print(f"the admin: {COMPOSE_ADMIN_EMAIL}, ADMIN_PASSWORD in {folder / 'accounts.env'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
