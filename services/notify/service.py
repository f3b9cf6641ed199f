"""notify service entrypoints."""

from chassis.db import Database
from chassis.web import Operable


class NotifyService(Operable):
    name = "notify"
    db = Database()
