"""Station appointments: what their events carry."""


def event_data(appointment: dict, **extra) -> dict:
    """`appointment.*` data from a stored appointment joined with its slot."""
    return {
        "appointment_id": str(appointment["id"]),
        "slot_id": str(appointment["slot_id"]),
        "returnee_id": str(appointment["returnee_id"]),
        "starts_at": appointment["starts_at"],
        "ends_at": appointment["ends_at"],
        "location": appointment["location"],
        **extra,
    }
