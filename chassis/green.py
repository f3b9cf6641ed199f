"""Cooperative I/O: eventlet for sockets, psycogreen so a slow query does not stall the process."""

import warnings

_patched = False


def patch() -> None:
    """Monkey-patch the standard library and psycopg2. Call first thing in every process."""
    global _patched
    if _patched:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eventlet announces its bugfix-only status
        import eventlet

        eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
    _patched = True
