"""Matching's own settings: `matching.yml` next to this file, overridden by the environment
(`MATCH_WEIGHTS`, `MATCH_TOP_K`, ...; see that file) and, in tests, by the container config."""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from chassis.settings import service_settings
from services.matching.engine import FACTORS, MatchPolicy
from services.matching.settings import DECLARED
from services.matching.store import MAX_LOCKED

SERVICE = "matching"
DEFAULT_FILE = Path(__file__).with_name("matching.yml")


@dataclass(frozen=True)
class MatchingSettings:
    policy: MatchPolicy
    rematch_batch: int


def parse_weights(text: str) -> dict[str, float]:
    """`"need=0.5, industry=0.2"` → `{"need": 0.5, "industry": 0.2}`."""
    weights = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in FACTORS:
            raise ValueError(f"MATCH_WEIGHTS: expected factor=weight with a factor of {FACTORS}")
        weights[name] = float(value)
    return weights


@cache
def _file(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def load_settings(overrides: Mapping | None = None) -> MatchingSettings:
    """The file, then the environment, then `overrides` (container config keys `MATCH_*`)."""
    overrides = overrides or {}
    values = service_settings(SERVICE, DECLARED)

    def value(name: str):
        if name in overrides:
            return overrides[name]
        return values[name] or None

    data = _file(str(value("MATCH_CONFIG_FILE") or DEFAULT_FILE))
    weights = dict(data.get("weights", {}))
    env_weights = value("MATCH_WEIGHTS")
    if env_weights:
        weights.update(
            parse_weights(env_weights) if isinstance(env_weights, str) else dict(env_weights)
        )
    top_k = int(value("MATCH_TOP_K") or data.get("top_k", 20))
    share = float(value("MATCH_MAX_ORGANIZATION_SHARE") or data.get("max_organization_share", 1))
    batch = int(value("MATCH_REMATCH_BATCH") or data.get("rematch_batch", 25))
    policy = MatchPolicy(weights=weights, top_k=top_k, max_organization_share=share)
    return MatchingSettings(policy=policy, rematch_batch=min(max(1, batch), MAX_LOCKED))
