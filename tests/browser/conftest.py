"""The portal in a real browser: Debian's Chromium driven by Playwright against the whole
platform (every service as its own process, the portal among them).

The tests run in a process of their own, without eventlet (conftest.py at the root):
`test_in_a_browser.py` starts it from the suite (`make test`), or run them directly with
`make test-browser`. One browser for that process, one platform per test module, a fresh
browser context (cookies, language, viewport) per test. `deploy.local prepare --for-tests`
(`make test`) installs the browser; BROWSER names another Chromium.
"""

import os
from pathlib import Path

import pytest

from deploy.local import BROWSER

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "portal"

BROWSER_PROCESS = os.environ.get("PORTAL_BROWSER_TESTS") == "1"
# Each process collects its own part: the suite the launcher, the browser process the tests.
collect_ignore = (
    ["test_in_a_browser.py"]
    if BROWSER_PROCESS
    else [
        p.name for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_in_a_browser.py"
    ]
)


def pytest_configure(config):
    # Said once at import by eventlet, which this process imports but does not use.
    config.addinivalue_line("filterwarnings", "ignore:\\s*Eventlet is deprecated")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(BROWSER).exists():
        pytest.fail(f"No Chromium at {BROWSER}: `make test` installs it, or set BROWSER.")
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        chromium = playwright.chromium.launch(executable_path=BROWSER, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def portal(platform):
    """The platform with its portal running."""
    platform.start("portal")
    return platform


@pytest.fixture
def browsing(browser, portal, request):
    from tests.browser.support import Browsing

    name = request.module.__name__.rsplit(".", 1)[-1]
    session = Browsing(browser, portal, OUTPUT / name)
    yield session
    session.close()
