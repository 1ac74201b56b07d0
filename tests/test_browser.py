"""The example shop's admin in a real Chromium: the decoded time column, the date filters and
the Snowflake ID panel, as someone signed in sees and uses them.

The shop runs in its own ``runserver`` process on its own SQLite file (tests/example_server.py),
so nothing here touches the test database.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
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
