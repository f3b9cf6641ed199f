"""The platform's published language: the CloudEvents envelope and one schema per event type.

Installable on its own by district systems that subscribe to the platform's events.
"""

from contracts.catalog import Catalog, EventType, UnknownEventType
from contracts.envelope import Event, InvalidEvent
from contracts.schemas import EVENT_TYPES

CATALOG = Catalog(EVENT_TYPES)

__all__ = ["CATALOG", "Event", "EventType", "InvalidEvent", "UnknownEventType"]
