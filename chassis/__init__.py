"""The platform's chassis: the one place for messaging, persistence and HTTP plumbing.

Services import the pieces they need:

- `chassis.db.Database`      a unit of work: state changes and the events they cause commit together
- `chassis.events.subscribe` an idempotent event handler with retries and a dead-letter queue
- `chassis.web.http`         an HTTP entrypoint with JSON errors and correlation ids
- `chassis.operable.Operable`     the health, metrics and OpenAPI endpoints every service serves
"""

import warnings

# eventlet announces its bugfix-only status on import; the reason we still use it is documented
# in docs/dependencies.md, and the notice would otherwise open every command's output.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
