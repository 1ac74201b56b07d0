"""The example shop in a real Chromium: the admin's decoded time column, date filters and
Snowflake ID panel, as someone signed in sees and uses them; and the Swagger UI pages of its APIs,
served from the project's own static files, through which an order's ID comes back exact.

The shop runs in its own ``runserver`` process on its own SQLite file (tests/example_server.py),
so nothing here touches the test database.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[browser]'"
)

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    StorageState,
    ViewportSize,
    expect,
    sync_playwright,
)

from django_flakeid import Layout
from tests.example_server import CHROMIUM, CHROMIUM_ARGS, HISTORY, ExampleServer, serve_example

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM}: apt-get install chromium",
    ),
]

ORDERS = "/admin/shop/order/"
# The example's settings: the twitter layout from the default epoch, and Paris time.
LAYOUT = Layout()
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    with serve_example(tmp_path_factory.mktemp("shop")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(
    browser: Browser, server: ExampleServer, session: StorageState | None = None
) -> BrowserContext:
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT, storage_state=session)
    # A broken page should fail in seconds, not after Playwright's default half minute.
    context.set_default_timeout(10_000)
    return context


@pytest.fixture(scope="module")
def session(browser: Browser, server: ExampleServer) -> StorageState:
    # Signing in once: the server hashes the password on purpose slowly.
    context = new_context(browser, server)
    server.log_in(context.new_page())
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser: Browser, server: ExampleServer, session: StorageState) -> Iterator[Page]:
    context = new_context(browser, server, session)
    yield context.new_page()
    context.close()


def created_cells(page: Page) -> list[str]:
    return page.locator("#result_list tbody td.field-id_created").all_inner_texts()


def test_signing_in_opens_the_site_administration(browser: Browser, server: ExampleServer) -> None:
    context = new_context(browser, server)
    page = context.new_page()
    page.goto(ORDERS)
    assert urlsplit(page.url).path == "/admin/login/"
    expect(page.locator("#login-form")).to_be_visible()

    server.log_in(page)

    expect(page.locator("#site-name")).to_have_text("Django administration")
    expect(page.locator("#user-tools")).to_contain_text(server.username)
    expect(page.get_by_role("link", name="Orders", exact=True)).to_be_visible()
    context.close()


def test_changelist_has_a_sortable_created_column(page: Page, server: ExampleServer) -> None:
    page.goto(ORDERS)

    header = page.locator("#result_list thead th.column-id_created")
    assert (header.text_content() or "").strip() == "Created (from ID)"
    expect(page.locator("#result_list tbody tr")).to_have_count(server.orders)
    expect(page.locator(".paginator")).to_contain_text(f"{server.orders} orders")
    today = dt.datetime.now(PARIS)
    assert created_cells(page)[0].startswith(f"{today:%b}")
    assert str(today.year) in created_cells(page)[0]

    header.locator("a").first.click()
    # Sorting by the column sorts by the ID: the oldest order of the history comes first.
    _days, _machine, customer, *_ = max(HISTORY)
    expect(page.locator("#result_list tbody tr").first).to_contain_text(customer)


@pytest.mark.parametrize(
    ("choice", "days", "expected"),
    [("Today", 1, "orders_today"), ("Past 7 days", 8, "orders_past_week")],
)
def test_date_filter_keeps_the_orders_of_the_period(
    page: Page, server: ExampleServer, choice: str, days: int, expected: str
) -> None:
    page.goto(ORDERS)

    page.locator("#changelist-filter").get_by_role("link", name=choice, exact=True).click()

    page.wait_for_url(re.compile(r"[?&]id__generated_at__gte="))
    query = parse_qs(urlsplit(page.url).query)
    assert sorted(query) == ["id__generated_at__gte", "id__generated_at__lt"]
    since = dt.datetime.fromisoformat(query["id__generated_at__gte"][0])
    until = dt.datetime.fromisoformat(query["id__generated_at__lt"][0])
    assert since.time() == until.time() == dt.time()
    assert (until.date() - since.date()).days == days
    assert until.date() == dt.datetime.now(PARIS).date() + dt.timedelta(days=1)
    count = getattr(server, expected)
    expect(page.locator("#result_list tbody tr")).to_have_count(count)
    expect(page.locator(".paginator")).to_contain_text(f"{count} orders")
    expect(page.locator("#changelist-filter li.selected", has_text=choice)).to_have_count(1)


def test_drilldown_goes_from_this_year_to_this_month(page: Page) -> None:
    now = dt.datetime.now(PARIS)
    page.goto(ORDERS)
    drilldown = page.locator("#changelist-filter ul.flakeid-drilldown")

    drilldown.get_by_role("link", name=str(now.year), exact=True).click()

    page.wait_for_url(re.compile(r"[?&]id__generated_at__year="))
    assert parse_qs(urlsplit(page.url).query) == {"id__generated_at__year": [str(now.year)]}
    assert all(str(now.year) in cell for cell in created_cells(page))
    month = drilldown.get_by_role("link", name=f"{now:%B %Y}", exact=True)
    expect(month).to_be_visible()

    month.click()

    page.wait_for_url(re.compile(r"[?&]id__generated_at__month="))
    assert parse_qs(urlsplit(page.url).query) == {
        "id__generated_at__year": [str(now.year)],
        "id__generated_at__month": [str(now.month)],
    }
    assert all(cell.startswith(f"{now:%b}") for cell in created_cells(page))


def test_change_page_shows_the_decoded_id(page: Page) -> None:
    page.goto(ORDERS)
    first = page.locator("#result_list tbody tr").first
    created = first.locator("td.field-id_created").inner_text()

    first.locator("th a").click()

    page.wait_for_url("**/change/")
    order_id = int(urlsplit(page.url).path.rstrip("/").split("/")[-2])
    decoded = LAYOUT.decode(order_id)
    panel = page.locator("fieldset", has=page.locator("table.flakeid-details"))
    expect(panel.locator("h2")).to_have_text("Snowflake ID")
    headings = [text.strip() for text in panel.locator("thead th").all_text_contents()]
    assert headings == ["Field", "Generated", "Datacenter", "Machine", "Sequence"]
    cells = panel.locator("tbody tr td")
    expect(cells).to_have_count(5)
    expect(cells.nth(0)).to_have_text("ID")
    expect(cells.nth(1)).to_contain_text(created)
    expect(cells.nth(1).locator("code")).to_have_text(decoded.generated_at)
    expect(cells.nth(2)).to_have_text("1")
    expect(cells.nth(3)).to_have_text(str(decoded.machine_id))
    expect(cells.nth(4)).to_have_text(str(decoded.sequence))


@dataclass(frozen=True)
class SwaggerPage:
    """A Swagger UI page of the shop's APIs."""

    path: str
    #: The API's list of orders, which a POST adds to.
    orders: str
    #: The operation that reads one order, as the page's deep links name it: tag/operation ID.
    operation: str
    #: The name of that operation's ID parameter.
    parameter: str
    title: str
    packages: tuple[str, ...]


SWAGGER_PAGES = [
    pytest.param(
        SwaggerPage(
            "/api/rest/docs/",
            "/api/rest/orders/",
            "orders/orders_retrieve",
            "id",
            "Example shop",
            ("rest_framework", "drf_spectacular", "drf_spectacular_sidecar"),
        ),
        id="drf-spectacular",
    ),
    pytest.param(
        SwaggerPage(
            "/api/ninja/docs",
            "/api/ninja/orders",
            "orders/shop_ninja_api_get_order",
            "order_id",
            "Example shop (Django Ninja)",
            ("ninja",),
        ),
        id="ninja",
    ),
]


def skip_unless_installed(swagger: SwaggerPage) -> None:
    missing = [package for package in swagger.packages if find_spec(package) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install -e '.[spectacular,ninja]')")


def far_order_id(server: ExampleServer) -> int:
    """An order's ID that a JavaScript number would round: odd, above 2**53."""
    conn = sqlite3.connect(server.database)
    try:
        ids = [int(pk) for (pk,) in conn.execute("SELECT id FROM shop_order ORDER BY id")]
    finally:
        conn.close()
    return next(pk for pk in ids if int(float(pk)) != pk)


def open_swagger(browser: Browser, server: ExampleServer, docs: str) -> tuple[Page, list[str]]:
    """A page on ``docs``, signed out, with every address it asked for.

    Requests to any other host are refused on the spot, so that a page that needs a CDN fails
    here as it would behind a firewall, instead of waiting for a network that is not there.
    """
    context = new_context(browser, server)
    asked: list[str] = []
    context.on("request", lambda request: asked.append(request.url))
    origin = re.escape(server.url)
    context.route(re.compile(rf"^(?!{origin}/)"), lambda route: route.abort())
    page = context.new_page()
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if not response.ok else None)
    # Returns once the page's scripts and styles are loaded, or refused.
    page.goto(docs)
    assert [url for url in asked if not url.startswith(f"{server.url}/")] == []
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert failed == []
    return page, asked


@pytest.mark.parametrize("swagger", SWAGGER_PAGES)
def test_swagger_ui_renders_from_the_projects_own_assets(
    browser: Browser, server: ExampleServer, swagger: SwaggerPage
) -> None:
    skip_unless_installed(swagger)

    page, asked = open_swagger(browser, server, swagger.path)

    expect(page.locator(".swagger-ui .info .title")).to_contain_text(swagger.title)
    expect(page.locator(".opblock-tag", has_text="orders")).to_be_visible()
    assert [url for url in asked if not url.startswith(f"{server.url}/")] == []
    scripts = [url for url in asked if url.endswith(".js")]
    assert any(urlsplit(url).path.startswith("/static/") for url in scripts), scripts
    page.context.close()


# Run in the page: the order as JavaScript reads the API's answer, and what the same digits
# would become as a JSON number.
READ_ORDER = """
async ([url, expected]) => {
  const response = await fetch(url, {headers: {Accept: "application/json"}});
  const order = JSON.parse(await response.text());
  const asNumber = JSON.parse(`{"id": ${order.id}}`).id;
  return {
    status: response.status,
    type: typeof order.id,
    id: order.id,
    exact: BigInt(order.id) === BigInt(expected),
    numberExact: BigInt(asNumber) === BigInt(expected),
    numberShown: String(asNumber),
  };
}
"""


@pytest.mark.parametrize("swagger", SWAGGER_PAGES)
def test_an_order_id_round_trips_exactly_through_swagger_ui(
    browser: Browser, server: ExampleServer, swagger: SwaggerPage
) -> None:
    skip_unless_installed(swagger)
    order_id = str(far_order_id(server))
    page, _asked = open_swagger(browser, server, f"{swagger.path}#/{swagger.operation}")
    block = page.locator(f"#operations-{swagger.operation.replace('/', '-')}")
    expect(block.locator(".opblock-body")).to_be_visible()

    block.get_by_role("button", name="Try it out").click()
    block.locator(f"input[placeholder={swagger.parameter}]").fill(order_id)
    block.get_by_role("button", name="Execute").click()

    live = block.locator(".live-responses-table .response")
    expect(live.locator(".response-col_status")).to_have_text("200")
    shown = live.locator(".response-col_description pre").first.inner_text()
    assert f'"id": "{order_id}"' in shown
    request_url = block.locator(".request-url pre").inner_text()
    assert urlsplit(request_url).path.rstrip("/").endswith(f"/{order_id}")

    read: dict[str, Any] = page.evaluate(READ_ORDER, [request_url, order_id])

    assert read["status"] == 200
    # A string, equal to the ID in the database digit for digit...
    assert (read["type"], read["id"], read["exact"]) == ("string", order_id, True)
    # ...which the same digits as a JSON number would not have been.
    assert read["numberExact"] is False
    assert read["numberShown"] != order_id
    page.context.close()


# Run in the page: a new order for the customer of an existing one, both IDs as the page got
# them from the API, never through a JavaScript number.
CREATE_ORDER = """
async ([orders, existing]) => {
  const headers = {Accept: "application/json", "Content-Type": "application/json"};
  const order = await (await fetch(existing, {headers})).json();
  const body = JSON.stringify({customer: order.customer, tags: order.tags});
  const response = await fetch(orders, {method: "POST", headers, body});
  const created = await response.json();
  return {status: response.status, customer: order.customer, created};
}
"""


@pytest.mark.parametrize("swagger", SWAGGER_PAGES)
def test_an_order_created_from_the_page_is_stored_under_the_id_it_answers(
    browser: Browser, server: ExampleServer, swagger: SwaggerPage
) -> None:
    skip_unless_installed(swagger)
    existing = far_order_id(server)
    page, _asked = open_swagger(browser, server, swagger.path)
    trailing = "/" if swagger.orders.endswith("/") else ""

    made: dict[str, Any] = page.evaluate(
        CREATE_ORDER, [swagger.orders, f"{swagger.orders.rstrip('/')}/{existing}{trailing}"]
    )

    assert made["status"] == 201, made
    created = made["created"]
    assert isinstance(created["id"], str)
    assert created["customer"] == made["customer"]
    conn = sqlite3.connect(server.database)
    try:
        rows = conn.execute(
            "SELECT customer_id FROM shop_order WHERE id = ?", (int(created["id"]),)
        ).fetchall()
        # The admin's tests count the orders of the day.
        with conn:
            conn.execute("DELETE FROM shop_order_tags WHERE order_id = ?", (int(created["id"]),))
            conn.execute("DELETE FROM shop_order WHERE id = ?", (int(created["id"]),))
    finally:
        conn.close()
    assert rows == [(int(made["customer"]),)]
    page.context.close()
