"""A diagnostic variant of accounts for `bench/platform.py`: the same service with the Argon2id
password hash replaced by a precomputed hash, to show what `POST /returnees` costs besides it.

Never for production: every account gets the same password hash.

    python -m chassis.run accounts bench.platform_unhashed:UnhashedAccounts
"""

from services.accounts import handlers, service
from services.accounts.credentials import hash_password

_PRECOMPUTED = hash_password("the same for every account")

handlers.hash_password = lambda password: _PRECOMPUTED


class UnhashedAccounts(service.AccountsService):
    name = "accounts"
