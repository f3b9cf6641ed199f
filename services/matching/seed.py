"""Reference data: the district's partner organizations and the resources they offer.

    python -m services.matching.seed      # MATCHING_DATABASE_URL or DATABASE_URL

Idempotent: organizations and resources have fixed ids (UUID v5 of a readable name, the same
scheme and namespace as `contracts/examples.py`, so ICBC and the Linkong park are the examples'
organizations). accounts can register the same organizations under the same ids later; its
`organization.registered` then updates the names here. A resource is published (outbox event,
so reverse matching and subscribers see it) only the first time it is inserted.
"""

import sys
import uuid
from datetime import date
from pathlib import Path

import yaml

from chassis.db import ScriptDatabase
from chassis.pool import ConnectionPool, script_pool
from services.matching import handlers
from services.matching.store import MatchingStore

_NAMESPACE = uuid.UUID("5b0f4c52-6a7e-4d0e-9a51-0d3c2f6f1a10")  # as contracts/examples.py


def seed_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


ICBC = seed_id("organization:icbc-changning")
LINKONG_PARK = seed_id("organization:linkong-park")
HONGQIAO_INCUBATOR = seed_id("organization:hongqiao-returnee-incubator")
WRSA_CHANGNING = seed_id("organization:wrsa-changning")
HONGQIAO_ALUMNI = seed_id("organization:hongqiao-alumni-union")
XINHUA_SUBDISTRICT = seed_id("organization:xinhua-road-subdistrict")
SHENGHE_BIO = seed_id("organization:shenghe-biopharma")
ZHIXING_AI = seed_id("organization:zhixing-ai")
HUAYAN_LAW = seed_id("organization:huayan-law")
HONGQIAO_ANGELS = seed_id("organization:hongqiao-angels")

# (id, name, kind, district): the station's partners, one list for every service's seed.
REFERENCE = Path(__file__).resolve().parents[2] / "deploy" / "reference" / "organizations.yml"
ORGANIZATIONS = [
    (o["id"], o["name"], o["kind"], o["district"])
    for o in yaml.safe_load(REFERENCE.read_text())["organizations"]
]

_ANY: list[str] = []


def _resource(
    slug,
    org,
    title,
    kind,
    needs,
    industries=_ANY,
    stages=_ANY,
    district=None,
    capacity=10,
    valid_until=None,
    description="",
):
    return {
        "id": seed_id(f"resource:{slug}"),
        "organization_id": org,
        "title": title,
        "kind": kind,
        "needs_served": needs,
        "industries": industries,
        "stages": stages,
        "district": district,
        "capacity": capacity,
        "valid_from": None,
        "valid_until": valid_until,
        "description": description,
    }


RESOURCES = [
    _resource(
        "icbc-cross-border",
        ICBC,
        "Cross-border settlement and FX hedging for returnee start-ups",
        "cross_border_finance",
        ["cross_border_finance", "financing"],
        stages=["registered", "growth"],
        district="Changning",
        capacity=50,
        valid_until=date(2027, 6, 30),
        description="Multi-currency accounts, cross-border "
        "RMB settlement and forward FX contracts with a returnee green channel.",
    ),
    _resource(
        "icbc-startup-loan",
        ICBC,
        "Guaranteed start-up loan up to 500k CNY",
        "financing",
        ["financing"],
        stages=["registered"],
        district="Changning",
        capacity=30,
        valid_until=date(2027, 12, 31),
        description="Government-guaranteed loan for "
        "companies up to 3 years old; interest subsidy for returnee founders.",
    ),
    _resource(
        "icbc-tech-credit",
        ICBC,
        "Technology enterprise credit line",
        "financing",
        ["financing"],
        industries=["biotech", "ai", "advanced_manufacturing", "new_energy"],
        stages=["growth"],
        capacity=20,
        description="Credit on IP pledge and VC backing.",
    ),
    _resource(
        "linkong-office",
        LINKONG_PARK,
        "Linkong park office space, first year rent-free",
        "office_space",
        ["office_space"],
        stages=["registered", "growth"],
        district="Changning",
        capacity=12,
        valid_until=date(2027, 12, 31),
        description="Up to 500 m2 per company, rent waived the first year.",
    ),
    _resource(
        "linkong-lab",
        LINKONG_PARK,
        "Shared wet-lab benches for life-science start-ups",
        "office_space",
        ["office_space"],
        industries=["biotech", "healthcare"],
        district="Changning",
        capacity=8,
    ),
    _resource(
        "linkong-market",
        LINKONG_PARK,
        "Aviation-economy supplier introductions",
        "market_access",
        ["market_access", "partners"],
        industries=["advanced_manufacturing", "digital_commerce"],
        stages=["growth"],
        capacity=15,
    ),
    _resource(
        "hongqiao-incubator-seats",
        HONGQIAO_INCUBATOR,
        "Incubator seats, six-month programme",
        "incubation",
        ["incubation", "office_space"],
        stages=["idea", "registered"],
        district="Changning",
        capacity=20,
        valid_until=date(2027, 9, 30),
    ),
    _resource(
        "hongqiao-incubator-ai",
        HONGQIAO_INCUBATOR,
        "AI track: GPU credits and demo day",
        "incubation",
        ["incubation"],
        industries=["ai"],
        stages=["idea", "registered"],
        capacity=10,
    ),
    _resource(
        "hongqiao-incubator-registration",
        HONGQIAO_INCUBATOR,
        "Company registration assistance and fast approval",
        "market_access",
        ["market_access", "legal"],
        stages=["idea"],
        district="Changning",
        capacity=40,
    ),
    _resource(
        "wrsa-mentors",
        WRSA_CHANGNING,
        "Mentorship by returnee entrepreneurs of the Western Returned Scholars Association",
        "mentorship",
        ["mentorship"],
        capacity=30,
    ),
    _resource(
        "wrsa-biotech-mentors",
        WRSA_CHANGNING,
        "Life-science mentor circle",
        "mentorship",
        ["mentorship", "partners"],
        industries=["biotech", "healthcare"],
        capacity=12,
    ),
    _resource(
        "wrsa-chain",
        WRSA_CHANGNING,
        "Industrial-chain cooperation salon",
        "cooperation",
        ["partners", "market_access"],
        stages=["registered", "growth"],
        capacity=60,
    ),
    _resource(
        "hongqiao-alumni-mentors",
        HONGQIAO_ALUMNI,
        "Hongqiao alumni founder mentors",
        "mentorship",
        ["mentorship"],
        stages=["idea", "registered"],
        capacity=25,
    ),
    _resource(
        "hongqiao-alumni-talent",
        HONGQIAO_ALUMNI,
        "Alumni talent referral network",
        "talent",
        ["talent_recruitment"],
        capacity=40,
    ),
    _resource(
        "xinhua-green-channel",
        XINHUA_SUBDISTRICT,
        "Subdistrict green channel: hukou, housing and school enrolment help",
        "legal",
        ["residence_hukou", "policy_advice"],
        district="Changning",
        capacity=100,
    ),
    _resource(
        "xinhua-community-space",
        XINHUA_SUBDISTRICT,
        "Neighbourhood service station hot desks",
        "office_space",
        ["office_space"],
        stages=["idea"],
        district="Changning",
        capacity=15,
    ),
    _resource(
        "shenghe-cro-partner",
        SHENGHE_BIO,
        "Seeking CRO and diagnostics partners",
        "cooperation",
        ["partners", "market_access"],
        industries=["biotech", "healthcare"],
        stages=["registered", "growth"],
        capacity=5,
    ),
    _resource(
        "shenghe-pilot-line",
        SHENGHE_BIO,
        "Pilot production line time for biologics",
        "cooperation",
        ["partners"],
        industries=["biotech"],
        stages=["growth"],
        capacity=3,
    ),
    _resource(
        "zhixing-ai-pilots",
        ZHIXING_AI,
        "Pilot customers for AI applications in retail",
        "cooperation",
        ["partners", "market_access"],
        industries=["ai", "digital_commerce"],
        capacity=6,
    ),
    _resource(
        "zhixing-talent",
        ZHIXING_AI,
        "Shared ML engineering talent pool",
        "talent",
        ["talent_recruitment"],
        industries=["ai", "fintech"],
        capacity=10,
    ),
    _resource(
        "huayan-legal-clinic",
        HUAYAN_LAW,
        "Free legal clinic: incorporation, VIE, IP",
        "legal",
        ["legal"],
        capacity=50,
        description="Two hours of free advice per company.",
    ),
    _resource(
        "huayan-cross-border-legal",
        HUAYAN_LAW,
        "Cross-border contracts and compliance review",
        "legal",
        ["legal", "cross_border_finance"],
        stages=["registered", "growth"],
        capacity=20,
    ),
    _resource(
        "hongqiao-angels-seed",
        HONGQIAO_ANGELS,
        "Seed investment for returnee founders",
        "financing",
        ["financing"],
        stages=["idea", "registered"],
        capacity=8,
        valid_until=date(2027, 12, 31),
    ),
    _resource(
        "hongqiao-angels-fintech",
        HONGQIAO_ANGELS,
        "Fintech follow-on round",
        "financing",
        ["financing", "partners"],
        industries=["fintech"],
        stages=["growth"],
        capacity=4,
    ),
]


def seed(pool: ConnectionPool) -> dict:
    """Insert what is missing; returns how many organizations and resources were added."""
    database = ScriptDatabase(pool, "matching", store=MatchingStore)
    with database.unit_of_work() as uow:
        return handlers.seed_reference(ORGANIZATIONS, RESOURCES, uow)


def main() -> int:
    with script_pool("matching") as pool:
        added = seed(pool)
    print(
        f"matching: seeded {added['organizations']} organizations, {added['resources']} resources"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
