"""Loaded before any test module: make I/O cooperative first, as every service process does.

The browser tests (tests/browser) run in a process of their own that is not patched
(PORTAL_BROWSER_TESTS=1): Playwright's synchronous API switches greenlets of its own, which
eventlet's hub takes for its own and never wakes again."""

import os

from chassis import green

BROWSER_PROCESS = os.environ.get("PORTAL_BROWSER_TESTS") == "1"
if not BROWSER_PROCESS:
    green.patch()


def pytest_sessionfinish(session, exitstatus):
    # A folder with no tests yet (`make test-e2e` early on) is not a failure.
    import pytest

    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK
