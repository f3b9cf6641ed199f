"""`station dead-letters` and `station status`: what an operator looks at when events stop.

Dead letters are on the broker (AMQP_URI, per service `<SERVICE>_AMQP_URI`): browsing takes
them without acking, and whatever is not replayed or discarded goes back in its place. A
replayed event goes to the queue of the handler that failed, its attempt count reset."""

import json
import os
import re
import sys

import requests

from chassis.dead_letters import DeadLetterQueue
from chassis.settings import queue_type, setting
from station.client import SERVICES, service_url

OUTBOX_PENDING = re.compile(r'^outbox_pending\{service="(?P<service>[a-z]+)"\} (?P<n>[0-9.e+]+)$')


def dead_letter_queue(service: str) -> DeadLetterQueue:
    return DeadLetterQueue(setting(service, "AMQP_URI"), service, queue_type(service))


def dead_letters(command: str, service: str, event_ids: list[str], every: bool) -> int:
    queue = dead_letter_queue(service)
    if command == "list":
        letters = queue.summaries()
        for letter in letters:
            print(json.dumps(letter, ensure_ascii=False))
        print(f"{len(letters)} dead letter(s) in {queue.queue_name}", file=sys.stderr)
        return 0
    if command == "show":
        if len(event_ids) != 1:
            print("station: show takes one event id", file=sys.stderr)
            return 2
        letter = queue.show(event_ids[0])
        if letter is None:
            print(f"no dead letter {event_ids[0]} in {queue.queue_name}", file=sys.stderr)
            return 1
        print(json.dumps(letter, ensure_ascii=False, indent=2))
        return 0
    if not event_ids and not every:
        print(f"station: {command} needs event ids or --all", file=sys.stderr)
        return 2
    chosen = None if every else set(event_ids)
    done = queue.replay(chosen) if command == "replay" else queue.discard(chosen)
    print(f"{command}ed {len(done)} dead letter(s)")
    return 0 if every or len(done) == len(chosen) else 1


def operations_url(service: str) -> str:
    """Where the service serves `/metrics` and says why it is not ready: in production its
    operations port (`<SERVICE>_OPERATIONS_URL`), in development its HTTP port."""
    return os.environ.get(f"{service.upper()}_OPERATIONS_URL") or service_url(service)


def service_status(service: str) -> dict:
    """Readiness (`/health/ready`), the outbox backlog (`/metrics`) and the dead letters."""
    status = {"service": service, "url": service_url(service)}
    try:
        ready = requests.get(operations_url(service) + "/health/ready", timeout=5)
        status["ready"] = ready.status_code == 200
        try:
            status["checks"] = ready.json()
        except ValueError:
            status["checks"] = {"answer": ready.text[:200]}
        metrics = requests.get(operations_url(service) + "/metrics", timeout=5).text
        pending = [
            float(m.group("n"))
            for m in map(OUTBOX_PENDING.match, metrics.splitlines())
            if m and m.group("service") == service
        ]
        status["outbox_pending"] = int(pending[0]) if pending else None
    except requests.RequestException as error:
        status.update(ready=False, checks={"error": type(error).__name__}, outbox_pending=None)
    try:
        status["dead_letters"] = dead_letter_queue(service).count()
    except Exception as error:  # the broker away is what status is there to say
        status["dead_letters"] = None
        status["broker_error"] = str(error)[:200]
    return status


def status(services=SERVICES, as_json: bool = False) -> int:
    found = [service_status(s) for s in services]
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        print(f"{'service':<12}{'ready':<8}{'outbox':>8}{'dead letters':>14}  url")
        for s in found:
            outbox = "?" if s["outbox_pending"] is None else s["outbox_pending"]
            dead = "?" if s["dead_letters"] is None else s["dead_letters"]
            print(f"{s['service']:<12}{'yes' if s['ready'] else 'NO':<8}{outbox:>8}{dead:>14}"
                  f"  {s['url']}")  # fmt: skip
    return 0 if all(s["ready"] for s in found) else 1
