"""Shared by the tests that open pages in Debian's chromium (tests/course/test_browser.py, the report's page
test): where chromium is, how it is started, and a page that works offline and remembers what it tried."""

from pathlib import Path

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-artifacts" / "screenshots"
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")


class Offline:
    """A page whose every request other than file:, data: and about: is aborted and remembered."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.remote: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))

    def _route(self, route):
        if route.request.url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            self.remote.append(route.request.url)
            route.abort()

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SHOTS / name)
        return SHOTS / name

    def close(self):
        self.context.close()
