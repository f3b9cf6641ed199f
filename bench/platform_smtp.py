"""The SMTP server notify sends to during `bench/platform.py`, in its own process.

Reuses the tests' real SMTP sink (`deploy/mail_sink.py`, on aiosmtpd) without monkey-patching,
so the load generator's process does not also serve SMTP. Prints its port,
then answers each line on stdin with the number of messages accepted so far.

    python -m bench.platform_smtp
"""

import sys

from deploy.mail_sink import SmtpSink


def main() -> int:
    sink = SmtpSink().start()
    print(sink.port, flush=True)
    for _ in sys.stdin:
        print(len(sink.messages), flush=True)
    sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
