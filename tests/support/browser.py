"""Drive the web console in Debian's headless Chromium, against a real gateway.

The gateway runs on an event loop of its own thread (``ThreadedGateway``), so that the
browser tests can be plain synchronous Selenium code while the server keeps serving.
Shared by ``tests/integration/test_console.py`` and ``scripts/console_screenshots.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from ai1net.server.settings import Settings
from tests.conftest import Harness, run_harness

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = Path(__file__).parent / "axe" / "axe.min.js"
WAIT_S = 15
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
# Records window.alert/confirm/prompt calls instead of showing them, in every document.
ALERT_TRAP = """
window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (message) => { window.__alerts.push(String(message)); return null; };
}
"""


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)" \
        if missing else None


class ThreadedGateway:
    """A gateway and its bridge (tests.conftest.run_harness) served from a background thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._harness: Any = None
        self.harness: Harness

    def __enter__(self) -> ThreadedGateway:
        self._thread.start()
        self._harness = run_harness(self._settings)
        self.harness = self.call(anext(self._harness))
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._harness.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the gateway's loop and wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(WAIT_S * 2)

    @property
    def url(self) -> str:
        return self.harness.http_url


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, window.alert trapped in every page."""
    profile = tempfile.mkdtemp(prefix="ai1net-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ALERT_TRAP})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Console:
    """The console as a person uses it: sign in, open pages, fill forms."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, *, wait_s: float = WAIT_S) -> None:
        self.driver = driver
        self.url = f"{base_url}/console"
        self.wait_s = wait_s

    def wait(self, condition: Callable[[webdriver.Chrome], Any]) -> Any:
        return WebDriverWait(self.driver, self.wait_s).until(condition)

    def ready_page(self) -> str | None:
        return self.driver.execute_script(  # type: ignore[no-any-return]
            "const d = document.documentElement.dataset;"
            "return d.state === 'ready' ? d.page : null;")

    def wait_page(self, page: str) -> None:
        self.wait(lambda _d: self.ready_page() == page)

    def sign_out(self) -> None:
        self.driver.get(self.url)
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.refresh()
        self.wait_page("signin")

    def sign_in(self, key: str, *, landing: str = "catalog") -> None:
        self.sign_out()
        self.find("#signin-key").send_keys(key)
        self.find("form.signin button[type=submit]").click()
        self.wait_page(landing)

    def signed_in(self, key: str) -> Console:
        self.sign_in(key)
        return self

    def open(self, page: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", page)
        self.wait_page(page)

    def reload(self, page: str) -> None:
        """A fresh navigation (the key stays in sessionStorage)."""
        self.driver.get(f"{self.url}#{page}")
        self.driver.refresh()
        self.wait_page(page)

    def find(self, css: str) -> WebElement:
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """The rendered text of the first match, read in one step (the page may redraw)."""
        found = self.wait(lambda d: d.execute_script(
            "const node = document.querySelector(arguments[0]);"
            "return node ? [node.innerText.trim()] : null;", css))
        return str(found[0])

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def choose(self, css: str, value: str) -> None:
        Select(self.find(css)).select_by_value(value)

    def nav(self) -> list[str]:
        return [link.text for link in self.find_all("#nav a")]

    def alerts(self) -> list[str]:
        return self.driver.execute_script("return window.__alerts || []")  # type: ignore[no-any-return]

    def ready_ms(self) -> int:
        return int(self.driver.execute_script("return document.documentElement.dataset.readyMs"))

    def axe_violations(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations on the page as it is now."""
        if not self.driver.execute_script("return Boolean(window.axe)"):
            self.driver.execute_script(AXE.read_text())
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then((r) => done(r.violations), (e) => done([{id: 'axe-error', impact: 'critical',"
            " help: String(e), nodes: []}]));")
        return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                 "nodes": [n.get("target") for n in v["nodes"]][:5]}
                for v in result if v["impact"] in ("serious", "critical")]

    def color_scheme(self, scheme: str) -> None:
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
