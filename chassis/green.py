"""Cooperative I/O: eventlet for sockets, psycogreen so a slow query does not stall the process."""

_patched = False


def patch() -> None:
    """Monkey-patch the standard library and psycopg2. Call first thing in every process."""
    global _patched
    if _patched:
        return
    import eventlet
    from psycogreen.eventlet import patch_psycopg

    eventlet.monkey_patch()
    patch_psycopg()
    _patched = True
