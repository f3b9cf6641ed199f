"""accounts service entrypoints."""

from chassis.db import Database
from chassis.web import Operable


class AccountsService(Operable):
    name = "accounts"
    db = Database()
