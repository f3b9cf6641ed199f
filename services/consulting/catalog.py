"""The policy catalog as data: policies read from the versioned YAML files in `policies/`.

Parsing only; `seed.py` writes them to the database. A seeded policy's id is derived from its code,
so every environment (and every test) knows the same policy by the same id.
"""

import uuid
from datetime import date
from pathlib import Path

import yaml

from services.consulting.eligibility import validate_policy

POLICY_DIR = Path(__file__).resolve().parent / "policies"
_NAMESPACE = uuid.UUID("0b6f2a7e-5c1d-4f3e-9a8b-6c7d5e4f3a21")
REQUIRED = ("code", "version", "title", "summary", "citation", "effective_from", "criteria")


def policy_id(code: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, code))


def parse_policy(text: str, source: str = "<policy>") -> dict:
    policy = yaml.safe_load(text)
    missing = [key for key in REQUIRED if key not in policy]
    if missing:
        raise ValueError(f"{source}: missing {', '.join(missing)}")
    for key in ("effective_from", "effective_to", "application_deadline"):
        if isinstance(policy.get(key), str):
            policy[key] = date.fromisoformat(policy[key])
    policy.setdefault("effective_to", None)
    policy.setdefault("application_deadline", None)
    policy.setdefault("tiers", [])
    policy.setdefault("documents", [])
    policy["id"] = policy_id(policy["code"])
    validate_policy(policy)
    return policy


def load_policies(directory: Path = POLICY_DIR) -> list[dict]:
    return [parse_policy(p.read_text(), p.name) for p in sorted(directory.glob("*.yaml"))]


def published_event(policy: dict) -> dict:
    """The data of `policy.published` for a policy of the catalog."""
    return {
        "policy_id": policy["id"],
        "code": policy["code"],
        "title": policy["title"],
        "effective_from": policy["effective_from"],
        "effective_to": policy.get("effective_to"),
        "version": policy.get("version", 1),
    }
