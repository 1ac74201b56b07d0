"""The example shop served on a free local port with sample data and an admin user, for a browser.

``serve_example(folder)`` keeps everything in ``folder``: a new SQLite database, the node lock
folder and the server's log. Orders made by ``manage.py demo`` are from today; older ones are
added with IDs stamped days, months and a year back, so that the date filter and the drill-down
have something to tell apart. Used by ``tests/test_browser.py``,
``tests/test_example_project.py`` (the APIs) and ``scripts/admin_screenshots.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"

CHROMIUM = "/usr/bin/chromium"
# The network here may be closed: these flags keep Chromium from phoning home and logging
# every refused connection.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

USERNAME = "admin"
PASSWORD = "flakeid-example"
DEMO_RUNS = 3

# (days ago, machine ID, customer, email, product, unit price): orders from other machines of
# the same datacenter, spread over more than a year.
HISTORY = [
    (430, 3, "Grace Hopper", "grace@example.com", "Compiler manual", "18.00"),
    (200, 4, "Alan Turing", "alan@example.com", "Enigma rotor", "75.00"),
    (45, 3, "Katherine Johnson", "katherine@example.com", "Slide rule", "12.50"),
    (12, 4, "Grace Hopper", "grace@example.com", "Nanosecond wire", "0.30"),
    (5, 3, "Alan Turing", "alan@example.com", "Chess set", "40.00"),
    (2, 4, "Katherine Johnson", "katherine@example.com", "Star chart", "9.90"),
]
PAST_WEEK = sum(1 for days, *_ in HISTORY if days < 7)

# Run by `manage.py shell -c`, so that the example project itself carries no test fixtures.
# Each past order gets a generator whose clock is stuck at its moment: its IDs decode to that
# time, and stay below every ID the shop's own generator will issue.
ADD_HISTORY = f"""
import dataclasses
import time
from decimal import Decimal

from django_flakeid import SnowflakeGenerator, conf
from shop.models import Customer, Order, OrderLine

layout = dataclasses.asdict(conf.get_layout())
datacenter = conf.get_generator().datacenter_id
now_ms = int(time.time() * 1000)
for days, machine, name, email, product, price in {HISTORY!r}:
    moment = now_ms - days * 86_400_000
    generator = SnowflakeGenerator(
        **layout, datacenter_id=datacenter, machine_id=machine, clock=lambda: moment
    )
    customer_id, order_id, line_id = generator.next_ids(3)
    customer, _ = Customer.objects.get_or_create(
        email=email, defaults={{"id": customer_id, "name": name}}
    )
    order = Order.objects.create(id=order_id, customer=customer)
    OrderLine.objects.create(
        id=line_id, order=order, product=product, quantity=2, unit_price=Decimal(price)
    )
"""


@dataclass(frozen=True)
class ExampleServer:
    url: str
    username: str
    password: str
    orders_today: int
    orders_past_week: int
    orders: int
    log: Path
    #: The shop's SQLite file, to compare what the APIs answer with what is stored.
    database: Path

    def log_in(self, page: Page) -> None:
        """Sign ``page`` in to the admin through its login form."""
        page.goto(f"{self.url}/admin/login/?next=/admin/")
        page.fill("#id_username", self.username)
        page.fill("#id_password", self.password)
        page.click("input[type=submit]")
        page.wait_for_url(f"{self.url}/admin/")


def clean_environment(folder: Path) -> dict[str, str]:
    """This process's environment without anything that would pick another project, database
    or node: the server must use the example's settings whoever starts it (pytest-django sets
    DJANGO_SETTINGS_MODULE to the test settings)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "FLAKEID_", "EXAMPLE_"))
    }
    lock_dir = folder / "locks"
    lock_dir.mkdir(exist_ok=True)
    return env | {
        "EXAMPLE_DATABASE_NAME": str(folder / "shop.sqlite3"),
        "FLAKEID_LOCK_DIR": str(lock_dir),
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"runserver exited with status {server.returncode}:\n{log_text(log)}"
            )
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"runserver did not answer {url} within {timeout} s:\n{log_text(log)}")


def log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


@contextmanager
def serve_example(folder: Path) -> Iterator[ExampleServer]:
    """Prepare the shop in ``folder``, serve it with ``runserver``, and stop it on exit."""
    env = clean_environment(folder)

    def manage(*args: str) -> None:
        result = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")

    for _ in range(DEMO_RUNS):
        manage("demo")
    manage("shell", "--no-imports", "-c", ADD_HISTORY)
    manage("createsuperuser", "--noinput")

    port = free_port()
    log = folder / "runserver.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(MANAGE), "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/admin/login/", server, log)
        yield ExampleServer(
            url=url,
            username=USERNAME,
            password=PASSWORD,
            orders_today=DEMO_RUNS,
            orders_past_week=DEMO_RUNS + PAST_WEEK,
            orders=DEMO_RUNS + len(HISTORY),
            log=log,
            database=Path(env["EXAMPLE_DATABASE_NAME"]),
        )
    finally:
        # Ctrl+C rather than a kill: the server exits through its atexit hooks, which lets a
        # coverage run collect what the admin code did inside it.
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
