"""Create a service's database if missing and apply its migrations (Alembic).

    python -m chassis.migrate accounts [consulting ...]
    python -m chassis.migrate --revision "add returnees" accounts    # new empty migration

Migrations live in `services/<name>/migrations/`; the Alembic environment is `chassis/alembic/`.
"""

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from alembic import command
from alembic.config import Config
from psycopg2 import sql

from chassis.settings import database_url

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, url: str | None = None, versions: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "chassis" / "alembic"))
    versions = versions or ROOT / "services" / service / "migrations"
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url or database_url(service)))
    return config


def sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else url


def ensure_database(url: str) -> bool:
    """Create the database named in `url` when it does not exist; True when it was created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    conn = psycopg2.connect(maintenance, connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def migrate(service: str, url: str | None = None, versions: Path | None = None) -> None:
    url = url or database_url(service)
    ensure_database(url)
    command.upgrade(alembic_config(service, url, versions), "head")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chassis.migrate", description=__doc__)
    parser.add_argument("services", nargs="+")
    parser.add_argument("--revision", metavar="MESSAGE", help="create a new migration instead")
    args = parser.parse_args(argv)
    for service in args.services:
        if args.revision:
            command.revision(alembic_config(service), message=args.revision)
        else:
            migrate(service)
            print(f"{service}: database migrated to head")
    return 0


if __name__ == "__main__":
    sys.exit(main())
