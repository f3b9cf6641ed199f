"""Loaded before any test module: make I/O cooperative first, as every service process does,
and run in development mode (development keys and accounts; the tests of production's refusals
set `PLATFORM_ENV=production` for the processes they start)."""

import os

from chassis import green

os.environ.setdefault("PLATFORM_ENV", "development")
green.patch()


def pytest_sessionfinish(session, exitstatus):
    # A folder with no tests yet (`make test-e2e` early on) is not a failure.
    import pytest

    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
