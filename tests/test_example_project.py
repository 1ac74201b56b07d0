"""The example project as a new user runs it: `manage.py demo`, twice, then `check`; and the
same shop with its keys from `DEFAULT_AUTO_FIELD` (`--settings example.settings_auto`).

The shop's tests run on the database FLAKEID_TEST_DB names, in a scratch database of their own.
Its APIs (Django REST framework with its OpenAPI schema and Swagger UI, Django Ninja) are tested
over HTTP, against the shop served by `runserver` on a SQLite file (tests/example_server.py),
and the shop is run with each of their packages made unimportable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings

from django_flakeid import PRESET_TWITTER, Layout
from tests.example_server import HISTORY, ExampleServer, serve_example

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"
SERVER = os.environ.get("FLAKEID_TEST_DB", "sqlite")
SHOP_TABLES = ("shop_customer", "shop_tag", "shop_order", "shop_orderline", "shop_order_tags")
# The example's layout: twitter, default epoch.
LAYOUT = Layout(**PRESET_TWITTER)
Manage = Callable[..., subprocess.CompletedProcess[str]]


@dataclass(frozen=True)
class ShopDatabase:
    #: What points the example's settings at this database.
    env: dict[str, str]
    query: Callable[[str], list[tuple[Any, ...]]]


def clean_environment(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLAKEID_", "DJANGO_", "EXAMPLE_"))
    }
    return env | {
        "EXAMPLE_DATABASE_NAME": str(tmp_path / "shop.sqlite3"),
        "FLAKEID_LOCK_DIR": str(tmp_path / "locks"),
    }


def manager(env: dict[str, str]) -> Manage:
    def manage(*args: str, settings_module: str = "example.settings") -> Any:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            capture_output=True,
            text=True,
            env=env | {"DJANGO_SETTINGS_MODULE": settings_module},
            timeout=120,
            check=False,
        )

    return manage


@pytest.fixture
def run(tmp_path):
    """manage.py on a new SQLite file, as the README runs it."""
    return manager(clean_environment(tmp_path))


@pytest.fixture
def shop_database(tmp_path) -> Iterator[ShopDatabase]:
    """A new, empty database for the shop on the server the suite runs against."""
    if SERVER == "sqlite":
        yield sqlite_database(tmp_path / "shop.sqlite3")
    elif SERVER == "postgresql":
        yield from postgresql_database()
    else:
        yield from mariadb_database()


def sqlite_database(path: Path) -> ShopDatabase:
    import sqlite3

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    return ShopDatabase({"EXAMPLE_DATABASE_NAME": str(path)}, query)


def postgresql_database() -> Iterator[ShopDatabase]:
    import psycopg

    server = settings.DATABASES["default"]
    login = {"host": server["HOST"], "port": server["PORT"], "user": server["USER"]}
    name = f"flakeid_example_{os.getpid()}"
    with psycopg.connect(**login, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        admin.execute(f'CREATE DATABASE "{name}"'.encode())

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(**login, dbname=name) as conn:
            return conn.execute(sql.encode()).fetchall()

    env = {"EXAMPLE_DATABASE": "postgresql", "EXAMPLE_DATABASE_NAME": name}
    env |= {"PGHOST": login["host"], "PGPORT": str(login["port"]), "PGUSER": login["user"]}
    try:
        yield ShopDatabase(env, query)
    finally:
        with psycopg.connect(**login, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def mariadb_database() -> Iterator[ShopDatabase]:
    import MySQLdb

    server = settings.DATABASES["default"]
    login = {"host": server["HOST"], "port": int(server["PORT"]), "user": server["USER"]}
    name = f"flakeid_example_{os.getpid()}"

    def execute(sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        conn = MySQLdb.connect(**login, password=server["PASSWORD"], database=database or "")
        try:
            cursor = conn.cursor()
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            conn.close()

    execute(f"DROP DATABASE IF EXISTS `{name}`")
    execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    env = {"EXAMPLE_DATABASE": "mariadb", "EXAMPLE_DATABASE_NAME": name}
    env |= {"MYSQL_HOST": login["host"], "MYSQL_TCP_PORT": str(login["port"])}
    try:
        yield ShopDatabase(env, lambda sql: execute(sql, name))
    finally:
        execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def run_on_server(tmp_path, shop_database: ShopDatabase) -> Manage:
    return manager(clean_environment(tmp_path) | shop_database.env)


def through_key_is_left_to_the_database(database: ShopDatabase) -> bool:
    """Whether the id column of the table Django made for Order.tags fills itself in."""
    if SERVER == "sqlite":
        [(sql,)] = database.query("SELECT sql FROM sqlite_master WHERE name = 'shop_order_tags'")
        assert '"id" integer NOT NULL PRIMARY KEY' in sql
        return "AUTOINCREMENT" in sql
    if SERVER == "postgresql":
        [(identity, default)] = database.query(
            "SELECT is_identity, column_default FROM information_schema.columns "
            "WHERE table_name = 'shop_order_tags' AND column_name = 'id'"
        )
        return identity == "YES" or default is not None
    [(extra,)] = database.query(
        "SELECT extra FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = 'shop_order_tags' AND column_name = 'id'"
    )
    return "auto_increment" in extra.lower()


def test_demo_runs_twice_and_adds_an_order_each_time(run):
    first = run("demo")
    assert first.returncode == 0, first.stderr
    assert "1 order in the shop" in first.stdout
    order_id = next(line.split()[1] for line in first.stdout.splitlines() if "Order " in line)
    decoded = run("flakeid", "decode", order_id, "--format", "json")
    assert decoded.returncode == 0, decoded.stderr
    assert '"datacenter_id": 1' in decoded.stdout
    second = run("demo")
    assert second.returncode == 0, second.stderr
    assert "2 orders in the shop" in second.stdout


@pytest.mark.parametrize("settings_module", ["example.settings", "example.settings_auto"])
def test_example_project_passes_its_checks(run, settings_module):
    result = run("check", "--fail-level", "WARNING", settings_module=settings_module)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("settings_module", ["example.settings", "example.settings_auto"])
def test_both_settings_share_the_shops_migrations(run, settings_module):
    result = run("makemigrations", "--check", "--dry-run", settings_module=settings_module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.parametrize(
    ("settings_module", "chosen_by", "through_key_by_database"),
    [
        # The project's DEFAULT_AUTO_FIELD stays BigAutoField, which migrations use for the
        # through table; the running shop still writes Snowflake keys into it.
        ("example.settings", "ShopConfig.default_auto_field", True),
        ("example.settings_auto", "settings.DEFAULT_AUTO_FIELD", False),
    ],
)
def test_every_shop_key_is_a_new_snowflake_id(
    run_on_server, shop_database, settings_module, chosen_by, through_key_by_database
):
    started_ms = time.time_ns() // 1_000_000
    for _ in range(2):
        result = run_on_server("demo", settings_module=settings_module)
        assert result.returncode == 0, result.stderr
    assert f"Keys: SnowflakeAutoField, from {chosen_by}\n" in result.stdout
    assert "2 orders in the shop" in result.stdout
    assert through_key_is_left_to_the_database(shop_database) is through_key_by_database
    for table in SHOP_TABLES:
        [(count, lowest, highest)] = shop_database.query(
            f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}"
        )
        assert count > 0, table
        # Made by this test's demo runs, not counted 1, 2, 3 by the database.
        assert lowest >= LAYOUT.min_id_at(started_ms), table
        assert highest <= LAYOUT.min_id_at(time.time_ns() // 1_000_000 + 1), table
    [(tagged,)] = shop_database.query("SELECT COUNT(*) FROM shop_order_tags")
    assert tagged == 4


def test_a_shop_made_before_its_keys_became_snowflake_auto_fields_keeps_its_rows(
    run_on_server, shop_database
):
    assert run_on_server("migrate", "shop", "0001").returncode == 0
    made = run_on_server(
        "shell",
        "--no-imports",
        "-c",
        "from shop.models import Customer; "
        "print(Customer.objects.create(name='Ada Lovelace', email='ada@example.com').pk)",
    )
    assert made.returncode == 0, made.stderr
    customer_id = int(made.stdout)
    result = run_on_server("demo")
    assert result.returncode == 0, result.stderr
    # The demo found the customer it makes on a first run: the migration kept the row.
    assert "\n  Customer " not in result.stdout
    assert shop_database.query("SELECT customer_id FROM shop_order") == [(customer_id,)]


# --- Without the optional packages -------------------------------------------------------------

OPTIONAL = (
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "ninja",
    "pydantic",
    "pydantic_core",
)

# manage.py with some modules made unimportable, as if they had never been installed. None in
# sys.modules makes their import fail and importlib.util.find_spec() answer None, as for a
# missing package; an import hook raising ModuleNotFoundError would make find_spec() raise,
# which no uninstalled package does.
WITHOUT = """
import runpy
import sys
from pathlib import Path

manage, blocked, *args = sys.argv[1:]
for name in filter(None, blocked.split(",")):
    sys.modules[name] = None
sys.path.insert(0, str(Path(manage).parent))
sys.argv = [manage, *args]
runpy.run_path(manage, run_name="__main__")
"""


def needs(*modules: str) -> pytest.MarkDecorator:
    """Skip unless every module is installed: checked before a test's fixtures start a server."""
    missing = [module for module in modules if find_spec(module) is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"not installed: {', '.join(missing)} "
        "(python -m pip install -e '.[spectacular,ninja,filter]')",
    )


@pytest.fixture
def run_without(tmp_path) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = clean_environment(tmp_path)

    def manage(
        blocked: tuple[str, ...], *args: str, settings_module: str = "example.settings"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT, str(MANAGE), ",".join(blocked), *args],
            capture_output=True,
            text=True,
            env=env | {"DJANGO_SETTINGS_MODULE": settings_module},
            timeout=120,
            check=False,
        )

    return manage


@pytest.mark.parametrize("settings_module", ["example.settings", "example.settings_auto"])
def test_the_shop_runs_with_django_alone(run_without, settings_module):
    demo = run_without(OPTIONAL, "demo", settings_module=settings_module)
    assert demo.returncode == 0, demo.stderr
    assert "1 order in the shop" in demo.stdout
    check = run_without(
        OPTIONAL, "check", "--fail-level", "WARNING", settings_module=settings_module
    )
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout
    migrations = run_without(
        OPTIONAL, "makemigrations", "--check", "--dry-run", settings_module=settings_module
    )
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    assert "No changes detected" in migrations.stdout


# Run by `manage.py shell -c`: the system checks, then which of the shop's URLs exist, and
# whether the REST API's orders are filtered (a customer that is no ID is refused, or ignored).
MOUNTED = """
import json

from django.core.management import call_command
from django.test import Client
from django.urls import Resolver404, resolve

call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
paths = [
    "/api/orders/", "/api/rest/orders/", "/api/rest/schema/", "/api/rest/docs/",
    "/api/ninja/orders", "/api/ninja/docs",
]
mounted = []
for path in paths:
    try:
        resolve(path)
    except Resolver404:
        continue
    mounted.append(path)
filtered = None
if "/api/rest/orders/" in mounted:
    response = Client(HTTP_HOST="localhost").get("/api/rest/orders/?customer=nobody")
    filtered = response.status_code == 400
print(json.dumps({"mounted": mounted, "filtered": filtered}))
"""
REST = ["/api/rest/orders/"]
SCHEMA = ["/api/rest/schema/", "/api/rest/docs/"]
NINJA = ["/api/ninja/orders", "/api/ninja/docs"]
SPECTACULAR = ("drf_spectacular", "drf_spectacular_sidecar")


@pytest.mark.parametrize(
    ("blocked", "mounted", "filtered"),
    [
        pytest.param(OPTIONAL, [], None, id="django-alone"),
        pytest.param(
            (*SPECTACULAR, "django_filters", "ninja", "pydantic", "pydantic_core"),
            REST,
            False,
            marks=needs("rest_framework"),
            id="drf-alone",
        ),
        pytest.param(
            # drf-spectacular depends on Django REST framework: they go together.
            ("rest_framework", *SPECTACULAR, "django_filters"),
            NINJA,
            None,
            marks=needs("ninja"),
            id="ninja-alone",
        ),
        pytest.param(
            ("drf_spectacular_sidecar",),
            REST + NINJA,
            True,
            marks=needs("rest_framework", "drf_spectacular", "django_filters", "ninja"),
            id="no-sidecar-no-docs",
        ),
        pytest.param(
            ("django_filters",),
            REST + SCHEMA + NINJA,
            False,
            marks=needs("rest_framework", *SPECTACULAR, "ninja"),
            id="no-django-filter",
        ),
        pytest.param(
            (),
            REST + SCHEMA + NINJA,
            True,
            marks=needs("rest_framework", *SPECTACULAR, "django_filters", "ninja"),
            id="everything",
        ),
    ],
)
def test_each_api_is_mounted_when_its_packages_are_installed(
    run_without, blocked, mounted, filtered
):
    result = run_without(blocked, "shell", "--no-imports", "-c", MOUNTED)

    assert result.returncode == 0, result.stderr
    # After what the checks print.
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "mounted": ["/api/orders/", *mounted],
        "filtered": filtered,
    }


# --- The APIs, over HTTP -----------------------------------------------------------------------

ID = re.compile(r"[0-9]{1,19}")
NOT_AN_ID = "A Snowflake ID must be a whole number"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    with serve_example(tmp_path_factory.mktemp("shop")) as running:
        yield running


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, body: object = None, accept: str = "application/json") -> Reply:
    """GET ``url``, or POST ``body`` to it as JSON; any status is an answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": accept, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.headers.get_content_type(), response.read())
    except HTTPError as error:
        with error:
            return Reply(error.code, error.headers.get_content_type(), error.read())


def stored(server: ExampleServer, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of the shop's database, read beside the server."""
    conn = sqlite3.connect(server.database)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def customer_id(server: ExampleServer, email: str) -> int:
    [(found,)] = stored(server, "SELECT id FROM shop_customer WHERE email = ?", email)
    return int(found)


APIS = [
    pytest.param(
        "/api/rest/orders/", "/api/rest/orders/{}/", 400, marks=needs("rest_framework"), id="drf"
    ),
    pytest.param(
        "/api/ninja/orders", "/api/ninja/orders/{}", 422, marks=needs("ninja"), id="ninja"
    ),
]


@pytest.mark.parametrize(("orders", "order", "_refusal"), APIS)
def test_an_order_created_with_string_ids_reads_back_the_same(server, orders, order, _refusal):
    grace = customer_id(server, "grace@example.com")
    tags = sorted(int(tag) for (tag,) in stored(server, "SELECT id FROM shop_tag"))
    assert tags

    created = fetch(
        server.url + orders, {"customer": str(grace), "tags": [str(tag) for tag in tags]}
    )

    assert created.status == 201, created.text
    data = created.json()
    assert ID.fullmatch(data["id"])
    assert data["customer"] == str(grace)
    assert sorted(data["tags"]) == [str(tag) for tag in tags]
    assert (data["lines"], data["total"]) == ([], "0.00")
    # Stored under the very digits the API answered with.
    assert stored(server, "SELECT customer_id FROM shop_order WHERE id = ?", int(data["id"])) == [
        (grace,)
    ]
    linked = stored(
        server, "SELECT tag_id FROM shop_order_tags WHERE order_id = ?", int(data["id"])
    )
    assert sorted(tag for (tag,) in linked) == tags

    read = fetch(server.url + order.format(data["id"]))

    assert read.status == 200, read.text
    assert read.json() == data


@pytest.mark.parametrize(("orders", "order", "refusal"), APIS)
@pytest.mark.parametrize("customer", [1.5e18, "915375601857069056.0", "0x10", True])
def test_a_customer_that_is_not_an_id_is_refused(server, orders, order, refusal, customer):
    before = stored(server, "SELECT COUNT(*) FROM shop_order")

    reply = fetch(server.url + orders, {"customer": customer, "tags": []})

    assert reply.status == refusal, reply.text
    assert NOT_AN_ID in reply.text
    assert stored(server, "SELECT COUNT(*) FROM shop_order") == before


@pytest.mark.parametrize(("orders", "order", "_refusal"), APIS)
def test_an_id_past_javascripts_exact_integers_comes_back_digit_for_digit(
    server, orders, order, _refusal
):
    # Each order of the history is the second ID of a generator stuck at one moment: its
    # sequence is 1, so its ID is an odd number above 2**53, which no JavaScript number holds.
    ids = [int(pk) for (pk,) in stored(server, "SELECT id FROM shop_order ORDER BY id")]
    far = [pk for pk in ids if int(float(pk)) != pk]
    assert far

    answered = [fetch(server.url + order.format(pk)).json()["id"] for pk in far]

    assert answered == [str(pk) for pk in far]


@needs("rest_framework", "django_filters")
def test_rest_api_filters_orders_by_customer_and_by_the_time_in_their_ids(server):
    grace = customer_id(server, "grace@example.com")
    month_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    older = [
        str(pk)
        for (pk,) in stored(
            server,
            "SELECT id FROM shop_order WHERE id < ? ORDER BY id DESC",
            LAYOUT.min_id_at(int(month_ago.timestamp() * 1000)),
        )
    ]
    assert len(older) == sum(1 for days, *_ in HISTORY if days > 30)

    def ids(query: str) -> list[str]:
        reply = fetch(f"{server.url}/api/rest/orders/?{query}")
        assert reply.status == 200, reply.text
        return [order["id"] for order in reply.json()]

    assert ids(f"customer={grace}") == [
        str(pk)
        for (pk,) in stored(
            server, "SELECT id FROM shop_order WHERE customer_id = ? ORDER BY id DESC", grace
        )
    ]
    assert ids(f"created_before={month_ago:%Y-%m-%dT%H:%M:%SZ}") == older
    refused = fetch(f"{server.url}/api/rest/orders/?customer=1.5")
    assert refused.status == 400
    assert refused.json() == {"customer": [f"{NOT_AN_ID}, as a string of digits."]}


def integer_paths(schema: object, path: str = "") -> list[str]:
    """Where a schema says ``type: integer``, as JSON paths."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            found.append(path)
        for key, value in schema.items():
            found += integer_paths(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += integer_paths(value, f"{path}/{index}")
    return found


def assert_id_schema(schema: dict[str, Any]) -> None:
    # A nullable ID (Ninja's key of an unsaved row) is an ID or null.
    [schema] = [option for option in schema.get("anyOf", [schema]) if option["type"] != "null"]
    assert schema["type"] == "string"
    assert schema["pattern"] == "^[0-9]{1,19}$"
    assert ID.fullmatch(schema["example"])


@needs("rest_framework", *SPECTACULAR, "openapi_spec_validator")
def test_rest_schema_is_valid_openapi_with_ids_as_strings(server):
    from openapi_spec_validator import validate

    reply = fetch(f"{server.url}/api/rest/schema/?format=json")

    assert reply.status == 200, reply.text
    schema = reply.json()
    validate(schema)
    components = schema["components"]["schemas"]
    for name, fields in {
        "Customer": ["id"],
        "Tag": ["id"],
        "Order": ["id", "customer"],
        "OrderLine": ["id", "order"],
    }.items():
        for field in fields:
            assert_id_schema(components[name]["properties"][field])
    for field in ("tags", "lines"):
        assert_id_schema(components["Order"]["properties"][field]["items"])
    for path in ("/api/rest/orders/{id}/", "/api/rest/customers/{id}/"):
        [parameter] = schema["paths"][path]["get"]["parameters"]
        assert parameter["in"] == "path"
        assert_id_schema(parameter["schema"])
    # Nothing else is typed as a number but an order line's quantity.
    assert {path.rpartition("/")[2] for path in integer_paths(schema)} == {"quantity"}


@needs("rest_framework", *SPECTACULAR)
def test_rest_schema_generates_without_a_warning(run, tmp_path):
    output = tmp_path / "schema.yaml"

    result = run("spectacular", "--validate", "--fail-on-warn", "--file", str(output))

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert "type: string" in output.read_text()


@needs("ninja", "openapi_spec_validator")
def test_ninja_schema_is_valid_openapi_with_ids_as_strings(server):
    from openapi_spec_validator import validate

    reply = fetch(f"{server.url}/api/ninja/openapi.json")

    assert reply.status == 200, reply.text
    schema = reply.json()
    validate(schema)
    components = schema["components"]["schemas"]
    assert_id_schema(components["CustomerOut"]["properties"]["id"])
    for field in ("id", "customer"):
        assert_id_schema(components["OrderOut"]["properties"][field])
    for field in ("tags", "lines"):
        assert_id_schema(components["OrderOut"]["properties"][field]["items"])
    assert_id_schema(components["OrderIn"]["properties"]["customer"])
    assert_id_schema(components["OrderIn"]["properties"]["tags"]["items"])
    [parameter] = schema["paths"]["/api/ninja/orders/{order_id}"]["get"]["parameters"]
    assert_id_schema(parameter["schema"])
    assert integer_paths(schema) == []


class _Links(HTMLParser):
    """The addresses a page loads: every ``src`` and ``href``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


@pytest.mark.parametrize(
    ("docs", "loads"),
    [
        pytest.param(
            "/api/rest/docs/",
            {"swagger-ui.css", "swagger-ui-bundle.js"},
            marks=needs("rest_framework", *SPECTACULAR),
            id="drf-swagger-ui",
        ),
        pytest.param(
            "/api/ninja/docs",
            {"swagger-ui.css", "swagger-ui-bundle.js"},
            marks=needs("ninja"),
            id="ninja-swagger-ui",
        ),
    ],
)
def test_docs_page_loads_only_assets_the_project_serves(server, docs, loads):
    page = fetch(server.url + docs, accept="text/html")

    assert page.status == 200, page.text
    assert page.content_type == "text/html"
    # No address of another host anywhere in the page, inline scripts included.
    hosts = {urlsplit(url).netloc for url in re.findall(r"https?://[^\s\"'<>]+", page.text)}
    assert hosts <= {urlsplit(server.url).netloc}
    links = _Links()
    links.feed(page.text)
    assets = [urljoin(server.url + docs, url) for url in links.urls]
    assert {Path(urlsplit(url).path).name for url in assets} >= loads
    for url in assets:
        assert urlsplit(url).netloc == urlsplit(server.url).netloc, url
        asset = fetch(url, accept="*/*")
        assert asset.status == 200, url
        assert asset.body, url
