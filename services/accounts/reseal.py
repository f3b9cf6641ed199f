"""Seal every ID document again under the current data key.

    ACCOUNTS_DATA_KEY=<new> ACCOUNTS_DATA_KEYS_PREVIOUS=<old>[,<older>] \
        python -m services.accounts.reseal [--batch 200]

Each batch is one transaction (rows locked `FOR UPDATE SKIP LOCKED`, so it may run beside the
service); values sealed before key ids were recorded are opened with whichever known key fits.
Prints how many values were re-sealed; once it reports none left, the previous keys can be
dropped from the settings (`docs/privacy.md`).
"""

import argparse
import sys

from chassis.db import ScriptDatabase
from chassis.pool import script_pool
from services.accounts import handlers
from services.accounts.sealing import Sealer
from services.accounts.store import AccountsStore


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.accounts.reseal", description=__doc__)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args(argv)
    sealer = Sealer.from_environment()
    total = 0
    with script_pool("accounts") as pool:
        db = ScriptDatabase(pool, "accounts", AccountsStore)
        while True:
            with db.unit_of_work() as uow:
                done = handlers.reseal_batch(uow, sealer, args.batch)
            total += done
            if done < args.batch:
                break
    print(f"re-sealed {total} ID document(s) under key {sealer.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
