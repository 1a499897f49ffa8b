"""The web console in a real browser (headless Chromium) against a real gateway (CONTRACT §7).

Skipped, with the reason, only where Debian's chromium and chromium-driver are not installed;
.ci/run installs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys

from tests.conftest import ADMIN_KEY, bearer, gateway_settings
from tests.support.browser import Console, ThreadedGateway, chromium, chromium_missing

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_missing() is not None,
                                 reason=chromium_missing() or "")]

HOSTILE = "<img src=x onerror=alert(1)>"
ROLE_PAGES = {
    "consumer": ["Models", "Playground", "Spend"],
    "provider": ["Models", "Playground", "My models", "Earnings"],
    "admin": ["Models", "Playground", "Keys", "All models", "Usage", "Health", "Audit"],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory,
            demo_provider_url: str) -> Iterator[ThreadedGateway]:
    """A gateway on SQLite with the demo provider's three models and one hostile description."""
    database = tmp_path_factory.mktemp("console") / "gateway.db"
    with ThreadedGateway(gateway_settings(f"sqlite:///{database}")) as running:
        harness = running.harness
        provider = running.call(harness.key("provider", "acme"))
        for name, kind, path, description in (
                ("demo-text", "text", "/v1/generate", "Streams a demo answer"),
                ("demo-image", "image", "/image/v1/generate", "Draws a demo picture"),
                ("demo-audio", "audio", "/audio/v1/generate", "Plays a demo tone"),
                ("hostile-notes", "text", "/v1/generate", HOSTILE)):
            running.call(harness.register(
                provider, name=name, type=kind, endpoint=demo_provider_url + path,
                auth_type="none", description=description, capabilities=["chat"],
                pricing={"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004}))
        yield running


@pytest.fixture(scope="module")
def console(gateway: ThreadedGateway) -> Iterator[Console]:
    with chromium() as driver:
        yield Console(driver, gateway.url)


def new_key(gateway: ThreadedGateway, role: str, name: str) -> str:
    return str(gateway.call(gateway.harness.key(role, name)))


def api(gateway: ThreadedGateway, method: str, path: str, key: str,
        body: Any = None) -> tuple[int, Any]:
    async def send() -> tuple[int, Any]:
        harness = gateway.harness
        async with harness.http.request(method, f"{harness.http_url}{path}", json=body,
                                        headers=bearer(key)) as resp:
            return resp.status, await resp.json() if resp.status != 204 else None
    return gateway.call(send())  # type: ignore[no-any-return]


def test_each_role_signs_in_and_sees_its_pages(gateway: ThreadedGateway, console: Console):
    keys = {"consumer": new_key(gateway, "consumer", "signin-consumer"),
            "provider": new_key(gateway, "provider", "signin-provider"), "admin": ADMIN_KEY}
    for role, key in keys.items():
        console.sign_in(key)
        assert console.nav() == ROLE_PAGES[role]
        assert console.text("#who .badge").lower() == role
        assert key not in console.driver.current_url
        assert console.driver.execute_script("return document.cookie") == ""
        assert console.driver.execute_script(
            "return sessionStorage.getItem('ai1net.console.key')") == key
        assert console.driver.execute_script("return localStorage.length") == 0
    console.sign_out()
    console.find("#signin-key").send_keys("ai1_not-a-key-of-this-gateway")
    console.find("form.signin button[type=submit]").click()
    error = console.wait(lambda _d: console.text("#signin-key-error"))
    assert error == "This key is unknown or revoked."
    assert console.driver.execute_script("return sessionStorage.length") == 0


def test_playground_streams_tokens_as_they_arrive(gateway: ThreadedGateway, console: Console):
    console.sign_in(new_key(gateway, "consumer", "streamer"))
    console.open("playground")
    console.choose("select[name=model]", "demo-text")
    console.fill("input[name=max_tokens]", "60")
    console.driver.execute_script("""
        window.__lengths = [];
        const output = document.getElementById('pg-output');
        new MutationObserver(() => window.__lengths.push(output.textContent.length))
          .observe(output, {characterData: true, childList: true, subtree: true});""")
    console.find("form.playground button[type=submit]").click()
    console.wait(lambda _d: console.text('[data-fact="Cost"]') != "—")
    lengths = [n for n in console.driver.execute_script("return window.__lengths") if n]
    assert len(lengths) >= 3, lengths  # the text grew delta by delta, not all at once
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)
    assert console.text("#pg-output")
    assert console.text('[data-fact="Model"]') == "demo-text"
    assert console.text('[data-fact="Route"]') != "—"
    assert console.text('[data-fact="Time to first token"]').endswith("ms")


def test_playground_previews_images_and_plays_audio(gateway: ThreadedGateway,
                                                    console: Console):
    console.sign_in(new_key(gateway, "consumer", "media"))
    console.open("playground")
    for model, tag in (("demo-image", "img"), ("demo-audio", "audio")):
        console.choose("select[name=model]", model)
        console.find("form.playground button[type=submit]").click()
        media = console.find(f".preview {tag}")
        assert media.get_attribute("src").startswith(f"data:{'image' if tag == 'img' else 'audio'}/")
        assert console.text('[data-fact="Model"]') == model


def test_provider_registers_a_model_and_sees_the_field_error(gateway: ThreadedGateway,
                                                             console: Console,
                                                             demo_provider_url: str):
    key = new_key(gateway, "provider", "form-provider")
    console.sign_in(key)
    console.open("mine")
    console.find(".state.empty")  # no model of its own yet
    console.find("#register-open").click()
    console.fill('[data-field="name"]', "form-model")
    console.fill('[data-field="endpoint"]', demo_provider_url + "/v1/generate")
    console.choose('[data-field="auth_type"]', "none")
    console.fill('[data-field="pricing.input_per_1k_tokens"]', "-0.5")
    console.fill('[data-field="pricing.output_per_1k_tokens"]', "0.004")
    console.find("form.model-form button[type=submit]").click()
    price = console.find('[data-field="pricing.input_per_1k_tokens"]')
    console.wait(lambda _d: price.get_attribute("aria-invalid") == "true")
    message = console.text(f"#{price.get_attribute('id')}-error")
    assert message.startswith("pricing.input_per_1k_tokens:")  # the API's own words
    assert api(gateway, "GET", "/v1/models/form-model", key)[0] == 404

    console.fill('[data-field="pricing.input_per_1k_tokens"]', "0.001")
    console.find("form.model-form button[type=submit]").click()
    row = console.find('tr[data-model="form-model"]')
    assert "healthy" in row.text
    status, model = api(gateway, "GET", "/v1/models/form-model", key)
    assert status == 200 and model["pricing"]["input_per_1k_tokens"] == 0.001

    row.find_element("css selector", "button[aria-label='Disable form-model']").click()
    console.wait(lambda _d: "disabled" in console.text('tr[data-model="form-model"]'))
    assert api(gateway, "GET", "/v1/models/form-model", key)[1]["enabled"] is False


def test_consumer_spend_chart_shows_the_calls_just_made(gateway: ThreadedGateway,
                                                       console: Console):
    key = str(gateway.call(gateway.harness.key("consumer", "spender", budget_usd=5.0)))
    console.sign_in(key, landing="catalog")
    console.open("spend")
    console.find(".state.empty")  # nothing spent yet
    for _ in range(3):
        status, _headers, _body = gateway.call(gateway.harness.generate(
            key, model="demo-text", input="hello", parameters={"max_tokens": 20}))
        assert status == 200
    _status, usage = api(gateway, "GET", "/v1/usage?group_by=model", key)
    console.reload("spend")
    bar = console.find('#chart-cost-model g.bar[data-label="demo-text"]')
    assert float(bar.get_attribute("data-value")) == pytest.approx(usage["usage"]["cost_usd"])
    assert float(bar.get_attribute("data-value")) > 0
    assert console.find_all("#chart-cost-model g.bar") == [bar]
    assert console.text(".totals .card:nth-child(2) .total-value") == "3"
    days = console.find_all("#chart-tokens-day g.bar")
    assert sum(int(d.get_attribute("data-value")) for d in days) == usage["usage"]["tokens_processed"]
    _status, me = api(gateway, "GET", "/v1/keys/me", key)
    assert me["spent_usd"] == pytest.approx(usage["usage"]["cost_usd"])
    left = f"${5.0 - me['spent_usd']:.6f}".rstrip("0")
    assert console.text("#budget-text").startswith(f"{left} left of a $5.00 budget"), left


def test_admin_creates_a_key_sees_it_once_and_revokes_it(gateway: ThreadedGateway,
                                                         console: Console):
    console.sign_in(ADMIN_KEY)
    console.open("keys")
    console.fill('[data-field="name"]', "short-lived")
    console.fill('[data-field="budget_usd"]', "2.5")
    console.find("form[aria-labelledby=create-h] button[type=submit]").click()
    secret = console.find("#new-key").get_attribute("value")
    assert secret.startswith("ai1_")
    assert api(gateway, "GET", "/v1/models", secret)[0] == 200
    assert "short-lived" in console.driver.page_source
    console.driver.find_element("xpath", "//button[text()='I have stored it']").click()
    console.wait(lambda _d: secret not in console.driver.page_source)  # shown once, then gone
    row = console.driver.find_element("xpath", "//tr[th[text()='short-lived']]")
    assert "$2.50" in row.text
    row.find_element("css selector", "button[aria-label='Revoke short-lived']").click()
    console.driver.find_element("xpath", "//button[text()='Confirm revoke']").click()
    console.wait(lambda _d: "short-lived" not in console.text("section[aria-labelledby=keys-h]"))
    status, body = api(gateway, "GET", "/v1/models", secret)
    assert status == 401 and body["error"]["type"] == "authentication_error"


def test_untrusted_text_is_shown_as_text_and_runs_nothing(gateway: ThreadedGateway,
                                                          console: Console):
    console.sign_in(new_key(gateway, "consumer", "reader"))
    card = console.find('article[data-model="hostile-notes"]')
    assert card.find_element("css selector", ".description").text == HOSTILE
    assert card.find_elements("css selector", "img") == []
    assert console.driver.execute_script("return document.querySelectorAll('img[src=x]').length") == 0
    assert console.alerts() == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("role", ["signed-out", "consumer", "provider", "admin"])
def test_every_page_passes_axe_without_serious_violations(gateway: ThreadedGateway,
                                                          console: Console, role: str,
                                                          scheme: str):
    console.color_scheme(scheme)
    found: dict[str, Any] = {}
    try:
        if role == "signed-out":
            console.sign_out()
            found["signin"] = console.axe_violations()
        else:
            console.sign_in(ADMIN_KEY if role == "admin" else new_key(gateway, role, f"axe-{role}"))
            for page in [a.get_attribute("data-page") for a in console.find_all("#nav a")]:
                console.open(page)
                found[page] = console.axe_violations()
    finally:
        console.color_scheme("light")
    assert found
    assert {page: v for page, v in found.items() if v} == {}


def test_pages_are_interactive_and_report_their_load_time(gateway: ThreadedGateway,
                                                          console: Console):
    console.sign_in(ADMIN_KEY)
    for page in ("catalog", "playground", "keys", "manage", "usage", "health"):
        console.reload(page)
        assert console.ready_ms() > 0


def test_the_console_fits_a_phone(gateway: ThreadedGateway, console: Console):
    console.driver.set_window_size(390, 844)
    try:
        console.sign_in(new_key(gateway, "consumer", "phone"))
        width = console.driver.execute_script("return document.documentElement.clientWidth")
        scroll = console.driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= width  # no sideways scrolling of the page itself
    finally:
        console.driver.set_window_size(1280, 900)



def test_the_console_works_from_the_keyboard(gateway: ThreadedGateway, console: Console):
    console.sign_out()
    console.driver.switch_to.active_element.send_keys(
        new_key(gateway, "consumer", "keyboard") + Keys.ENTER)  # the key field has focus
    console.wait_page("catalog")
    console.reload("catalog")  # a fresh document: Tab starts from its top
    reached = []
    for _ in range(8):
        console.driver.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(console.driver.switch_to.active_element.text)
        if reached[-1] == "Playground":
            break
    assert reached[0] == "Skip to content"
    assert reached[-1] == "Playground", reached
    console.driver.switch_to.active_element.send_keys(Keys.ENTER)
    console.wait_page("playground")


def test_the_audit_page_shows_the_trail_or_says_there_is_none(gateway: ThreadedGateway,
                                                               console: Console):
    console.sign_in(ADMIN_KEY)
    console.open("audit")
    status, _body = api(gateway, "GET", "/v1/audit", ADMIN_KEY)
    if status == 404:
        assert console.text(".page .state.empty").startswith("This gateway keeps no audit trail")
    else:
        assert status == 200
        assert console.find_all(".page table")
    assert console.find_all(".state.error") == []
