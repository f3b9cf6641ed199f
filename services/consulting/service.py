"""consulting service entrypoints."""

from chassis.db import Database
from chassis.web import Operable


class ConsultingService(Operable):
    name = "consulting"
    db = Database()
