"""matching service entrypoints."""

from chassis.db import Database
from chassis.web import Operable


class MatchingService(Operable):
    name = "matching"
    db = Database()
