"""CPU of a consumer's read of one event's data (`Catalog.check` without the envelope): the
compiled tolerant reader against marshmallow's tolerant load, on a `matches.proposed` of
twenty matches with three reasons each, best of several rounds, both in the same run.

    python -m bench.event_read [--rounds 7] [--events 500]
"""

import argparse
import json
import time
import uuid

from contracts import CATALOG


def matches_proposed(count: int = 20) -> dict:
    reason = {"factor": "need", "code": "serves_needs", "args": {"needs": ["funding"]},
              "detail": "Serves funding."}  # fmt: skip
    data = {
        "returnee_id": str(uuid.uuid4()),
        "matches": [
            {
                "match_id": str(uuid.uuid4()),
                "resource_id": str(uuid.uuid4()),
                "organization_id": str(uuid.uuid4()),
                "score": 0.9 - i / 100,
                "reasons": [dict(reason), dict(reason), dict(reason)],
            }  # fmt: skip
            for i in range(count)
        ],
        "added_resource_ids": [str(uuid.uuid4()) for _ in range(count)],
        "removed_resource_ids": [],
    }
    created = CATALOG.create("matching", "matches.proposed", data)
    return json.loads(json.dumps(created.data))


def best_ms(read, data, rounds: int, events: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(events):
            read(data)
        best = min(best, (time.process_time() - started) / events * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    event_type = CATALOG.get("matches.proposed")
    data = matches_proposed()
    assert event_type.load(data) == event_type.tolerant_schema.load(data)
    marshmallow = best_ms(event_type.tolerant_schema.load, data, args.rounds, args.events)
    compiled = best_ms(event_type.load, data, args.rounds, args.events)
    print(f"matches.proposed, 20 matches: CPU ms per read, best of {args.rounds} x {args.events}")
    print(f"  marshmallow tolerant load (baseline)   {marshmallow:8.3f}")
    print(f"  compiled tolerant reader               {compiled:8.3f}")
    print(f"  ratio                                  {marshmallow / compiled:8.1f}x")


if __name__ == "__main__":
    main()
