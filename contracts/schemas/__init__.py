"""Payload schemas of every published event, one module per producer."""

from contracts.schemas import access, accounts, activities, consulting, matching, notify

EVENT_TYPES = [
    *accounts.EVENT_TYPES,
    *consulting.EVENT_TYPES,
    *matching.EVENT_TYPES,
    *activities.EVENT_TYPES,
    *notify.EVENT_TYPES,
    *access.EVENT_TYPES,
]
