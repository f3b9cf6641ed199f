"""station: the operator's command (docs/station.md).

    station login                                   sign in (prompts; or STATION_EMAIL and
                                                    STATION_PASSWORD in the environment)
    station logout
    station import returnees|organizations|resources FILE.csv|FILE.xlsx
    station import --template returnees|organizations|resources FILE.xlsx
    station export returnees|organizations|resources|intentions FILE.xlsx
    station dead-letters list|show|replay|discard SERVICE [EVENT_ID ...] [--all]
    station status [--json]

Service URLs: ACCOUNTS_URL, MATCHING_URL, ... (the local ports by default).
"""

import argparse
import getpass
import os
import sys
from pathlib import Path

from chassis.sheets import KINDS
from station import exports, imports, operate
from station.client import SERVICES, Session, StationError, forget_tokens, sign_in, token_file


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="station", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("login", help="sign in as an admin or advisor")
    commands.add_parser("logout", help="forget the stored sign-in")
    load = commands.add_parser("import", help="import a CSV or XLSX file")
    load.add_argument("--template", action="store_true",
                      help="write an XLSX template to fill in instead")  # fmt: skip
    load.add_argument("kind", choices=list(KINDS))
    load.add_argument("file", type=Path)
    load.add_argument("--quiet", action="store_true", help="no progress bar, no row errors")
    load.add_argument("--parallel", type=int, default=imports.IN_FLIGHT, metavar="N",
                      help="batches in flight at once (default %(default)s): more when the "
                      "service runs several processes")  # fmt: skip
    dump = commands.add_parser("export", help="export to an XLSX file")
    dump.add_argument("kind", choices=list(exports.SOURCES))
    dump.add_argument("file", type=Path)
    letters = commands.add_parser("dead-letters", help="list, show, replay or discard")
    letters.add_argument("action", choices=["list", "show", "replay", "discard"])
    letters.add_argument("service", choices=SERVICES)
    letters.add_argument("event_ids", nargs="*")
    letters.add_argument("--all", action="store_true", help="replay or discard every one")
    state = commands.add_parser("status", help="readiness, outbox backlog, dead letters")
    state.add_argument("--json", action="store_true")
    return main


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except StationError as error:
        print(f"station: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstation: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _run(args) -> int:
    if args.command == "login":
        email = os.environ.get("STATION_EMAIL") or input("email: ")
        password = os.environ.get("STATION_PASSWORD") or getpass.getpass("password: ")
        stored = sign_in(email.strip(), password)
        print(f"signed in as {stored['email']} ({stored['role']}); token in {token_file()}")
        return 0
    if args.command == "logout":
        forget_tokens()
        return 0
    if args.command == "import" and args.template:
        imports.template(args.kind, args.file)
        return 0
    if args.command == "import":
        in_flight = max(1, args.parallel)
        return imports.run(Session(), args.kind, args.file, args.quiet, in_flight)
    if args.command == "export":
        return exports.run(Session(), args.kind, args.file)
    if args.command == "dead-letters":
        return operate.dead_letters(args.action, args.service, args.event_ids, args.all)
    return operate.status(as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
