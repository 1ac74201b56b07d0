"""Screenshots of the admin that SnowflakeAdminMixin gives the example shop, for the README.

Usage: python scripts/admin_screenshots.py [--output docs]

Needs Playwright for Python (``pip install -e ".[browser]"``) and Chromium at /usr/bin/chromium
(``apt-get install chromium`` on Debian); Playwright's own browser download is not used. Serves
the example project on a scratch SQLite database with orders spread over the past year, signs
in, and writes ``admin-changelist.png`` (the orders, with the "Created (from ID)" column and the
date filters) and ``admin-change.png`` (an order, with the "Snowflake ID" panel).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.example_server import CHROMIUM, CHROMIUM_ARGS, HISTORY, serve_example  # noqa: E402

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs", help="folder to write the PNG files to"
    )
    args = parser.parse_args()
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)

    with (
        tempfile.TemporaryDirectory(prefix="flakeid-screens-") as folder,
        serve_example(Path(folder)) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
            server.log_in(page)

            page.goto(f"{server.url}/admin/shop/order/?_facets=True")
            page.mouse.move(0, 0)
            changelist = output / "admin-changelist.png"
            page.screenshot(path=changelist)
            print(f"wrote {changelist}")

            # The newest order of the history was made on another machine: its panel says so.
            _days, _machine, customer, *_ = min(HISTORY)
            rows = page.locator("#result_list tbody tr", has_text=customer)
            rows.first.locator("th a").click()
            page.wait_for_load_state("load")
            page.mouse.move(0, 0)
            panel = page.locator("fieldset", has=page.locator("table.flakeid-details"))
            box = panel.bounding_box()
            if box is None:
                raise RuntimeError("the Snowflake ID panel is not displayed")
            bottom = box["y"] + box["height"] + 16
            change = output / "admin-change.png"
            # The panel sits below the tags widget, past the window's height: the picture runs
            # from the top of the page to the panel's end.
            page.screenshot(
                path=change,
                full_page=True,
                clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom},
            )
            print(f"wrote {change}")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
