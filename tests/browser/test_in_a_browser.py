"""The browser tests (test_portal.py, test_console.py) as part of the suite: run in a process of
their own, without eventlet (see conftest.py at the root); their report is shown when they fail."""

import os
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.timeout(1200)
def test_the_portal_in_a_real_browser():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/browser",
            "-q",
            "-rs",
            "--suppress-nameko-eventlet-notification",
        ],
        cwd=ROOT,
        env={**os.environ, "PORTAL_BROWSER_TESTS": "1"},
        capture_output=True,
        text=True,
        timeout=1190,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    print(report.strip().splitlines()[-1])  # e.g. "14 passed, 3 skipped in 95.2s"
