"""What the browser tests do as a person would: open pages on a phone-sized screen in a
language, fill fields found by their labels, look at every page (a screenshot kept under
test-output/portal/) and have axe-core check it."""

import re
from pathlib import Path

from tests.platform import PASSWORD
from tests.support import wait_until

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}  # a common phone, as most returnees use it
SERIOUS = ("serious", "critical")


class Browsing:
    def __init__(self, browser, platform, output: Path):
        self.browser = browser
        self.platform = platform
        self.output = output
        self.contexts = []

    @property
    def base(self) -> str:
        return self.platform.url("portal")

    def page(self, locale: str = "zh-CN", javascript: bool = True, viewport=PHONE):
        """A new browser (own cookies) whose person prefers `locale`."""
        context = self.browser.new_context(
            locale=locale,
            viewport=viewport,
            java_script_enabled=javascript,
            base_url=self.base,
            accept_downloads=True,
        )
        # What the Content-Security-Policy blocked, read by `look` (the page's own record:
        # Playwright's event listeners do not mix with the test process's eventlet).
        context.add_init_script(
            "window.__blocked = []; document.addEventListener('securitypolicyviolation',"
            " e => window.__blocked.push([e.violatedDirective, e.blockedURI,"
            " e.sourceFile + ':' + e.lineNumber, location.pathname,"
            " e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 200) : ''].join(' ')));"
        )
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()

    # -- looking at a page ---------------------------------------------------------------

    def shoot(self, page, name: str) -> Path:
        language = page.evaluate("document.documentElement.lang")
        path = self.output / language / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self, page) -> list[dict]:
        """axe-core's serious and critical violations of WCAG 2.1 A and AA on the page."""
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(AXE.read_text())
        result = page.evaluate(
            """() => axe.run(document, {runOnly: {type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"""
        )
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
            }
            for v in result["violations"]
            if v["impact"] in SERIOUS
        ]

    def look(self, page, name: str) -> None:
        """A screenshot for the reviewer, no serious accessibility violation, nothing the
        Content-Security-Policy had to block, nothing wider than the phone's screen."""
        page.wait_for_load_state("load")
        self.shoot(page, name)
        violations = self.axe(page)
        assert not violations, f"{name} ({page.url}): {violations}"
        blocked = page.evaluate("window.__blocked || []")
        assert not blocked, f"{name} ({page.url}): the CSP blocked {blocked}"
        twice = page.evaluate(
            "Object.entries(Array.from(document.querySelectorAll('[id]')).reduce((seen, e) =>"
            " ({...seen, [e.id]: (seen[e.id] || 0) + 1}), {})).filter(([, n]) => n > 1)"
        )
        assert not twice, f"{name} ({page.url}): ids used twice, labels may miss {twice}"
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{name} ({page.url}) is wider than the screen: {width}"

    # -- acting ------------------------------------------------------------------------

    def sign_in(
        self, page, email: str, password: str = PASSWORD, words=("Email", "Password", "Sign in")
    ) -> None:
        email_label, password_label, button = words
        page.goto("/login")
        page.get_by_label(email_label, exact=True).fill(email)
        page.get_by_label(password_label, exact=True).fill(password)
        page.get_by_role("button", name=button, exact=True).click()
        page.wait_for_url(re.compile(r"/me"))

    def reload_until(self, page, predicate, timeout: float = 30, message: str = ""):
        """Reload the page until `predicate(page)` holds: what the services compute after an
        event (eligibility, matches, an answer) shows up a moment later."""

        def shown():
            page.reload()
            return predicate(page)

        return wait_until(shown, timeout, 0.5, message)

    def link_emailed_to(self, address: str, path: str, timeout: float = 20) -> str:
        """The portal link (`/verify-email?token=...`) in the latest email to `address` that
        holds one, as the path and query to open."""

        def found():
            for message in reversed(self.platform.smtp.to(address)):
                body = message.get_body(("plain",)).get_content()
                link = re.search(rf"https?://[^\s/]+({re.escape(path)}\?token=[\w.~%-]+)", body)
                if link:
                    return link.group(1)
            return None

        return wait_until(found, timeout, 0.2, f"an email to {address} with a {path} link")
