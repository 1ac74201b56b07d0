"""Primary keys in a real database: Snowflake keys against BigAutoField, UUIDv4 and UUIDv7.

Usage: python benchmarks/database.py --db sqlite|postgresql|mariadb [--quick] [--rows N]
       [--saves N] [--rounds N] [--queries N] [--lookups N] [--csv PATH]

Models that differ only in their key (``benchmarks/dbbench_app/models.py``), each with an
integer payload:

- Snowflake keys: ``SnowflakeField``, the baseline; ``SnowflakeAutoField``; and on SQLite a
  ``SnowflakeField`` declared ``bigint`` instead of ``integer``, which SQLite keeps in an index
  of its own rather than making it the rowid. None has a ``created_at``: the key carries the
  time.
- ``BigAutoField``, ``UUIDField(default=uuid4)`` and a UUIDv7 key, twice each: as they are
  used, with an indexed ``created_at``, which they need to find recent rows; and bare, with
  no ``created_at`` at all, like the Snowflake tables: the key's own cost.

Measured in one run, on a scratch database the script creates and drops (a temporary file
for SQLite):

- ``save()``: rows per second, one ``INSERT`` per ``save()``, in one transaction per round
  (so the disk's commit latency does not drown the key's cost);
- ``bulk_create``: rows per second, batches of 1,000, building the model instances included;
  these rows are the data set: their times walk, in order, over the 100 hours before the
  run (Snowflake IDs come from a generator whose clock is fed those times, ``created_at`` is
  set to the same times), as if they had been written over four days;
- the size of the table, of the primary key index and of the ``created_at`` index;
- "rows from the last hour" (1% of them), fetched as model instances: on the Snowflake keys
  with the ``generated_at`` lookup (a range on the primary key), on the others by
  ``created_at`` (the bare tables cannot answer it);
- one row by its key: the ``SELECT`` Django writes for ``filter(pk=...)``, run through
  Django's cursor, for the same rows of every table in a random order (building querysets,
  the same work whatever the key, would hide the key's cost).

Every round runs each model once, starting with a different one each round, so drift on a
busy machine hits all of them; the table gives medians, and ratios against the
``SnowflakeField`` table of the same run: how many times better it does (rates: Snowflake ÷
this; times and sizes: this ÷ Snowflake).
PostgreSQL and MariaDB are reached on 127.0.0.1 as postgres and root (see --host, --user).
Results go to ``benchmarks/results/database-DB.csv`` (``database-DB-quick.csv`` with
``--quick``), which ``benchmarks/plot.py`` reads.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS, describe, today, write_csv

DATABASES = ("sqlite", "postgresql", "mariadb")
#: Rows for bulk_create, sized for a 2-core machine: a minute or so per database.
DEFAULT_ROWS = {"sqlite": 100_000, "postgresql": 300_000, "mariadb": 100_000}
DEFAULT_PORTS = {"postgresql": 5432, "mariadb": 3306}
DEFAULT_USERS = {"postgresql": "postgres", "mariadb": "root"}
BATCH_SIZE = 1000
SPAN_MS = 100 * 3_600_000
HOUR_MS = 3_600_000
#: Lookups per scheme and round, at most: they are quick, so they get more rounds.
LOOKUP_ROUND = 100
#: The scheme every ratio is taken against.
BASELINE = "Snowflake/none"


@dataclass
class Row:
    db: str
    db_version: str
    scheme: str
    key: str
    #: "indexed" where the table has created_at with an index, "none" where it has neither.
    created_at: str
    rows: int
    saves: int
    rounds: int
    queries: int
    lookups: int
    lookup_rounds: int
    bulk_rows_per_s: int
    bulk_ratio: float
    save_rows_per_s: int
    save_ratio: float
    table_bytes: int | None
    pk_index_bytes: int | None
    time_index_bytes: int | None
    total_bytes: int | None
    size_ratio: float | None
    #: Where the key lives: a separate index, or the table's own b-tree.
    pk_storage: str
    #: None where the table has no time to ask by.
    query_rows: int | None
    query_ms: float | None
    query_ratio: float | None
    time_filter: str
    lookup_us: float
    lookup_ratio: float
    mode: str
    machine: str
    date: str


@dataclass(frozen=True)
class Scheme:
    name: str
    key: str
    created_at: str
    model: Any
    #: Builds one unsaved row for bulk_create, made at a given time, with a payload.
    build: Callable[[dt.datetime, int], Any]

    @property
    def ref(self) -> str:
        """Unique in a run: the same key comes with and without created_at."""
        return f"{self.name}/{self.created_at}"

    @property
    def snowflake(self) -> bool:
        return self.name.startswith("Snowflake")


@dataclass(frozen=True)
class Sizes:
    table: int
    pk_index: int
    time_index: int
    pk_storage: str

    @property
    def total(self) -> int:
        return self.table + self.pk_index + self.time_index


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=DATABASES, default="sqlite", help="the database")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rows, few rounds")
    parser.add_argument(
        "--rows",
        type=int,
        help="rows per model for bulk_create (default: "
        + ", ".join(f"{db} {n:,}" for db, n in DEFAULT_ROWS.items())
        + "; 10,000 with --quick)",
    )
    parser.add_argument(
        "--saves", type=int, help="rows per model for save() (default 10,000; 300 with --quick)"
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds (default 20; 3 with --quick)"
    )
    parser.add_argument(
        "--queries", type=int, help="timed last-hour queries per model (default 30; 5 with --quick)"
    )
    parser.add_argument(
        "--lookups",
        type=int,
        help="timed lookups of one row by its key, per model (default 5,000; 300 with --quick)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (not for sqlite)")
    parser.add_argument("--port", type=int, help="server port (default: 5432 or 3306)")
    parser.add_argument("--user", help="server user (default: postgres or root)")
    parser.add_argument("--password", default="", help="server password (default: none)")
    parser.add_argument(
        "--csv",
        type=Path,
        help="where to write the results (default: benchmarks/results/database-DB.csv, "
        "or database-DB-quick.csv with --quick)",
    )
    args = parser.parse_args()
    args.rows = args.rows or (10_000 if args.quick else DEFAULT_ROWS[args.db])
    args.saves = args.saves or (300 if args.quick else 10_000)
    # Many short rounds: a neighbour's burst of work then skews few of them.
    args.rounds = args.rounds or (3 if args.quick else 20)
    args.queries = args.queries or (5 if args.quick else 30)
    args.lookups = args.lookups or (300 if args.quick else 5_000)
    args.port = args.port or DEFAULT_PORTS.get(args.db)
    args.user = args.user or DEFAULT_USERS.get(args.db)
    if min(args.rows, args.saves, args.lookups) < args.rounds:
        parser.error("--rows, --saves and --lookups must be at least --rounds")
    if args.lookups > args.rows:
        parser.error("--lookups must be at most --rows: each looks up a different row")
    return args


@contextmanager
def scratch_database(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Django's settings for a database made for this run, dropped when it ends."""
    name = f"flakeid_bench_{os.getpid()}"
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="flakeid-bench-") as folder:
            yield {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(folder) / "bench.db")}
        return
    server = {"HOST": args.host, "PORT": str(args.port), "USER": args.user}
    if args.db == "postgresql":
        admin = postgresql_admin(args)
        admin(f'CREATE DATABASE "{name}"')
        try:
            yield {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "PASSWORD": args.password,
                **server,
            }
        finally:
            close_django_connections()
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    admin = mariadb_admin(args)
    admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "PASSWORD": args.password,
            "OPTIONS": {"charset": "utf8mb4"},
            **server,
        }
    finally:
        close_django_connections()
        admin(f"DROP DATABASE IF EXISTS `{name}`")


def postgresql_admin(args: argparse.Namespace) -> Callable[[str], None]:
    try:
        import psycopg
    except ImportError:
        sys.exit("PostgreSQL needs psycopg: pip install -e '.[postgresql]'")

    def execute(statement: str) -> None:
        with psycopg.connect(
            host=args.host,
            port=args.port,
            user=args.user,
            password=args.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(statement.encode())

    return execute


def mariadb_admin(args: argparse.Namespace) -> Callable[[str], None]:
    try:
        import MySQLdb
    except ImportError:
        sys.exit("MariaDB needs mysqlclient: pip install -e '.[mariadb]'")

    def execute(statement: str) -> None:
        conn = MySQLdb.connect(
            host=args.host, port=args.port, user=args.user, password=args.password
        )
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    return execute


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


def configure_django(database: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        # With DEBUG on, Django would keep every query in memory.
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django_flakeid", "benchmarks.dbbench_app"],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        FLAKEID={"preset": "twitter"},
    )
    django.setup()


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        cursor.execute("SELECT version()")
        text = str(cursor.fetchone()[0])
    if connection.vendor == "postgresql":
        return " ".join(text.split()[:2])
    return f"MariaDB {text.split('-', 1)[0]}" if "mariadb" in text.lower() else f"MySQL {text}"


class WalkedClock:
    """A clock that reads out the times it was fed, one per call."""

    def __init__(self) -> None:
        self.times: Iterator[int] = iter(())

    def __call__(self) -> int:
        return next(self.times)


def make_schemes(clock: WalkedClock) -> list[Scheme]:
    """The models; Snowflake IDs for bulk_create come from a generator reading ``clock``."""
    from django.db import connection

    from benchmarks.dbbench_app import models
    from django_flakeid import SnowflakeGenerator, conf

    layout = conf.get_layout()

    def declared(model: Any) -> str:
        column = model._meta.pk.db_type(connection)
        return f"{column}: the rowid" if column == "integer" else column

    def snowflake(name: str, field: str, model: Any) -> Scheme:
        # The IDs a node of the project's layout would have made at the walked times; a
        # generator per table, since the clock walks the same times again for each.
        next_id = SnowflakeGenerator(
            timestamp_bits=layout.timestamp_bits,
            datacenter_bits=layout.datacenter_bits,
            machine_bits=layout.machine_bits,
            sequence_bits=layout.sequence_bits,
            epoch_ms=layout.epoch_ms,
            clock=clock,
        ).next_id
        return Scheme(
            name,
            f"{field} ({declared(model)})",
            "none",
            model,
            lambda when, i: model(id=next_id(), value=i),
        )

    def timed(name: str, key: str, model: Any) -> Scheme:
        return Scheme(name, key, "indexed", model, lambda when, i: model(created_at=when, value=i))

    def bare(name: str, key: str, model: Any) -> Scheme:
        return Scheme(name, key, "none", model, lambda when, i: model(value=i))

    schemes = [
        snowflake("Snowflake", "SnowflakeField", models.SnowflakeRow),
        snowflake("SnowflakeAutoField", "SnowflakeAutoField", models.SnowflakeAutoRow),
    ]
    if connection.vendor == "sqlite":
        # Elsewhere this model is the first one again.
        schemes.append(snowflake("Snowflake bigint", "SnowflakeField", models.SnowflakeBigintRow))
    others = [
        ("BigAutoField", "BigAutoField (database sequence)", models.BigAutoRow),
        ("UUIDv4", "UUIDField, default=uuid.uuid4", models.UUID4Row),
    ]
    bares = [models.BigAutoBareRow, models.UUID4BareRow]
    if models.UUID7_SOURCE:
        others.append(("UUIDv7", f"UUIDField, default={models.UUID7_SOURCE}", models.UUID7Row))
        bares.append(models.UUID7BareRow)
    else:
        print(
            "skipped UUIDv7: no source (pip install uuid-utils, or run on Python 3.14+)",
            file=sys.stderr,
        )
    schemes += [timed(*other) for other in others]
    schemes += [bare(name, key, model) for (name, key, _), model in zip(others, bares, strict=True)]
    return schemes


def create_tables(schemes: list[Scheme]) -> None:
    from django.db import connection

    with connection.schema_editor() as editor:
        for scheme in schemes:
            editor.create_model(scheme.model)


def drop_tables(schemes: list[Scheme]) -> None:
    from django.db import connection

    with connection.schema_editor() as editor:
        for scheme in schemes:
            editor.delete_model(scheme.model)


def rotated(schemes: list[Scheme], i: int) -> list[Scheme]:
    # A different model goes first each round, so warm-up and drift favour none.
    shift = i % len(schemes)
    return schemes[shift:] + schemes[:shift]


def measure_saves(schemes: list[Scheme], saves: int, rounds: int) -> dict[str, list[float]]:
    from django.db import transaction

    rates: dict[str, list[float]] = {s.ref: [] for s in schemes}
    for scheme in schemes:
        # First use of each table and of the project's generator, not measured.
        scheme.model(value=-1).save()
    for i in range(rounds):
        count = saves // rounds + (1 if i < saves % rounds else 0)
        for scheme in rotated(schemes, i):
            model = scheme.model
            start = time.perf_counter()
            with transaction.atomic():
                for value in range(count):
                    model(value=value).save()
            rates[scheme.ref].append(count / (time.perf_counter() - start))
    return rates


def measure_bulk(
    schemes: list[Scheme],
    clock: WalkedClock,
    rows: int,
    rounds: int,
    end_ms: int,
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {s.ref: [] for s in schemes}
    start_ms = end_ms - SPAN_MS
    done = 0
    for i in range(rounds):
        count = rows // rounds + (1 if i < rows % rounds else 0)
        # Row k of the whole run is stamped (k + 1) / rows of the way through the span.
        times_ms = [start_ms + (done + k + 1) * SPAN_MS // rows for k in range(count)]
        whens = [dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc) for ms in times_ms]
        for scheme in rotated(schemes, i):
            clock.times = iter(times_ms)
            build = scheme.build
            start = time.perf_counter()
            objs = [build(when, done + k) for k, when in enumerate(whens)]
            scheme.model.objects.bulk_create(objs, batch_size=BATCH_SIZE)
            rates[scheme.ref].append(count / (time.perf_counter() - start))
        done += count
    return rates


def analyze(schemes: list[Scheme]) -> None:
    from django.db import connection

    # Fresh statistics for the planner, and on PostgreSQL a vacuumed heap, as autovacuum
    # would leave it; none of this changes the size of an index.
    with connection.cursor() as cursor:
        for scheme in schemes:
            table = connection.ops.quote_name(scheme.model._meta.db_table)
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM ANALYZE {table}")
            elif connection.vendor == "mysql":
                cursor.execute(f"ANALYZE TABLE {table}")
                cursor.fetchall()
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")


def measure_sizes(scheme: Scheme) -> Sizes | None:
    from django.db import connection

    table = scheme.model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return postgresql_sizes(cursor, table)
        if connection.vendor == "mysql":
            return mariadb_sizes(cursor, table)
        return sqlite_sizes(cursor, table)


def postgresql_sizes(cursor: Any, table: str) -> Sizes:
    from django.db import connection

    constraints = connection.introspection.get_constraints(cursor, table)
    pk = next(name for name, c in constraints.items() if c["primary_key"])
    time_index = [
        name for name, c in constraints.items() if c["index"] and c["columns"] == ["created_at"]
    ]

    def size(relation: str) -> int:
        cursor.execute("SELECT pg_relation_size(%s::regclass)", [f'"{relation}"'])
        return int(cursor.fetchone()[0])

    return Sizes(
        size(table),
        size(pk),
        sum(size(name) for name in time_index),
        "a separate index",
    )


def mariadb_sizes(cursor: Any, table: str) -> Sizes:
    # InnoDB stores the rows inside the primary key's b-tree (DATA_LENGTH); every other
    # index, here only created_at's, is INDEX_LENGTH, and holds a copy of the key per row.
    cursor.execute(
        "SELECT data_length, index_length FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        [table],
    )
    data, index = cursor.fetchone()
    return Sizes(int(data), 0, int(index), "the table (clustered)")


def sqlite_sizes(cursor: Any, table: str) -> Sizes | None:
    from django.db import DatabaseError

    # dbstat (a virtual table most SQLite builds include) gives each b-tree's bytes. A key
    # declared "integer" (Django's auto fields) is the rowid, the key of the table's own
    # b-tree; any other key ("bigint" for SnowflakeField, "char(32)" for UUIDField) gets an
    # index of its own.
    cursor.execute(f"PRAGMA index_list({table})")
    pk_indexes: list[str] = []
    other_indexes: list[str] = []
    for _, name, _, origin, _ in cursor.fetchall():
        (pk_indexes if origin == "pk" else other_indexes).append(name)
    try:
        cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
    except DatabaseError:
        print("no sizes: this SQLite was built without the dbstat table", file=sys.stderr)
        return None
    size = {name: int(total) for name, total in cursor.fetchall()}
    return Sizes(
        size[table],
        sum(size[name] for name in pk_indexes),
        sum(size[name] for name in other_indexes),
        "a separate index" if pk_indexes else "the table (rowid)",
    )


def last_hour_queries(
    schemes: list[Scheme], cutoff: dt.datetime
) -> tuple[dict[str, Callable[[], int]], str]:
    """A "rows since ``cutoff``" query per model that has a time, and how Snowflake's filter."""
    from django_flakeid import conf

    queries: dict[str, Callable[[], int]] = {}
    how = "id__generated_at__gte (a range on the primary key)"
    for scheme in schemes:
        if scheme.created_at == "indexed":
            queries[scheme.ref] = bind_query(scheme.model.objects.filter(created_at__gte=cutoff))
            continue
        if not scheme.snowflake:
            continue
        if scheme.model._meta.pk.get_transform("generated_at") is not None:
            queryset = scheme.model.objects.filter(id__generated_at__gte=cutoff)
        else:
            # The same range the lookup makes: the first ID of the cutoff's millisecond.
            layout = conf.get_layout()
            cutoff_ms = int(cutoff.timestamp() * 1000)
            low = (cutoff_ms - layout.epoch_ms) << layout.timestamp_shift
            queryset = scheme.model.objects.filter(id__gte=low)
            how = "id__gte=<first ID of the cutoff> (no generated_at lookup in this version)"
        queries[scheme.ref] = bind_query(queryset)
    return queries, how


def bind_query(queryset: Any) -> Callable[[], int]:
    # A fresh queryset each time: a used one would answer from its cache.
    return lambda: len(list(queryset.all()))


def measure_queries(
    schemes: list[Scheme], queries: dict[str, Callable[[], int]], runs: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    asked = [s for s in schemes if s.ref in queries]
    times: dict[str, list[float]] = {s.ref: [] for s in asked}
    counts = {s.ref: queries[s.ref]() for s in asked}  # warms the caches, unmeasured
    for i in range(runs):
        for scheme in rotated(asked, i):
            start = time.perf_counter()
            queries[scheme.ref]()
            times[scheme.ref].append((time.perf_counter() - start) * 1000)
    return times, counts


def key_lookups(schemes: list[Scheme], rows: int, count: int) -> dict[str, list[Any]]:
    """Per model, the SQL that fetches one row by its key, and its parameters for ``count``
    rows: the same rows (by payload) in every table, in the same random order."""
    from django.db import connection

    wanted = random.Random(2026).sample(range(rows), count)
    statements: dict[str, list[Any]] = {}
    for scheme in schemes:
        model = scheme.model
        keys: dict[int, Any] = {}
        for start in range(0, count, 500):
            chunk = wanted[start : start + 500]
            keys.update(model.objects.filter(value__in=chunk).values_list("value", "pk"))
        if len(keys) != count:
            sys.exit(f"{scheme.ref}: {count - len(keys)} of the rows to look up are missing")
        query = model.objects.filter(pk=keys[wanted[0]]).values_list("pk", "value").query
        sql, _ = query.sql_with_params()
        field = model._meta.pk
        statements[scheme.ref] = [
            (sql, [field.get_db_prep_value(keys[value], connection)]) for value in wanted
        ]
    return statements


def lookup_rounds(args: argparse.Namespace) -> int:
    rounds: int = max(args.rounds, args.lookups // LOOKUP_ROUND)
    return rounds


def measure_lookups(
    schemes: list[Scheme], statements: dict[str, list[Any]], rounds: int
) -> dict[str, list[float]]:
    from django.db import connection

    times: dict[str, list[float]] = {s.ref: [] for s in schemes}
    count = len(statements[schemes[0].ref])
    with connection.cursor() as cursor:
        for scheme in schemes:
            # First use of each statement, not measured.
            sql, params = statements[scheme.ref][0]
            cursor.execute(sql, params)
            cursor.fetchall()
        done = 0
        for i in range(rounds):
            size = count // rounds + (1 if i < count % rounds else 0)
            for scheme in rotated(schemes, i):
                batch = statements[scheme.ref][done : done + size]
                found = 0
                start = time.perf_counter()
                for sql, params in batch:
                    cursor.execute(sql, params)
                    found += cursor.fetchone() is not None
                times[scheme.ref].append((time.perf_counter() - start) * 1e6 / size)
                if found != size:
                    sys.exit(f"{scheme.ref}: {size - found} of {size} lookups found no row")
            done += size
    return times


def per_round_ratio(values: dict[str, list[float]], ref: str, higher_is_better: bool) -> float:
    pairs = zip(values[BASELINE], values[ref], strict=True)
    if higher_is_better:
        return round(statistics.median(ours / theirs for ours, theirs in pairs), 2)
    return round(statistics.median(theirs / ours for ours, theirs in pairs), 2)


def megabytes(size: int | None) -> str:
    if size is None:
        return "n/a"
    return f"{size / 1_000_000:,.1f}" if size else "-"


def print_tables(rows: list[Row], time_filter: str) -> None:
    first = rows[0]
    print(
        f"\n{first.db_version}: {first.rows:,} rows per model by bulk_create (batches of "
        f"{BATCH_SIZE:,}), {first.saves:,} by save(); {first.rounds} interleaved rounds"
    )
    print(
        f"\n  {'key':20} {'created_at':>10} {'bulk_create rows/s':>19} {'ratio':>6} "
        f"{'save() rows/s':>14} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"  {r.scheme:20} {r.created_at:>10} {r.bulk_rows_per_s:>19,} {r.bulk_ratio:>6.2f} "
            f"{r.save_rows_per_s:>14,} {r.save_ratio:>6.2f}"
        )
    print(
        f"\n  {'key':20} {'created_at':>10} {'table MB':>9} {'PK index MB':>22} "
        f"{'created_at index MB':>20} {'total MB':>9} {'ratio':>6}"
    )
    for r in rows:
        pk = megabytes(r.pk_index_bytes) if r.pk_storage == "a separate index" else r.pk_storage
        ratio = "n/a" if r.size_ratio is None else f"{r.size_ratio:.2f}"
        print(
            f"  {r.scheme:20} {r.created_at:>10} {megabytes(r.table_bytes):>9} {pk:>22} "
            f"{megabytes(r.time_index_bytes):>20} {megabytes(r.total_bytes):>9} {ratio:>6}"
        )
    print(
        f"\n  rows from the last hour ({first.query_rows:,} of {first.rows:,}) as model "
        f"instances, median of {first.queries} runs; one row by its key, median of "
        f"{first.lookup_rounds} rounds of {first.lookups // first.lookup_rounds:,} lookups"
    )
    print(f"  {'key':20} {'filter':52} {'ms':>7} {'ratio':>6} {'by key µs':>10} {'ratio':>6}")
    for r in rows:
        if r.query_ms is not None and r.query_ratio is not None:
            query = f"{r.time_filter:52} {r.query_ms:>7.2f} {r.query_ratio:>6.2f}"
        else:
            query = f"{'(no created_at: cannot ask)':52} {'':>7} {'':>6}"
        print(f"  {r.scheme:20} {query} {r.lookup_us:>10.1f} {r.lookup_ratio:>6.2f}")
    print(
        "\nratio: how many times better the SnowflakeField key does, median of the per-round "
        "ratios (rates: Snowflake / this; times and sizes: this / Snowflake)."
    )
    if time_filter.startswith("id__gte"):
        print("note: the Snowflake query used an explicit range on the key (no lookup).")


def benchmark(args: argparse.Namespace) -> list[Row]:
    mode = "quick" if args.quick else "full"
    machine = describe()
    print(f"{machine}; {mode} run; {args.db}")
    with scratch_database(args) as database:
        configure_django(database)
        version = database_version()
        clock = WalkedClock()
        schemes = make_schemes(clock)

        print(f"save(): {args.saves:,} rows per model ...", flush=True)
        create_tables(schemes)
        save_rates = measure_saves(schemes, args.saves, args.rounds)
        drop_tables(schemes)

        print(f"bulk_create: {args.rows:,} rows per model ...", flush=True)
        create_tables(schemes)
        end_ms = time.time_ns() // 1_000_000
        bulk_rates = measure_bulk(schemes, clock, args.rows, args.rounds, end_ms)
        analyze(schemes)
        sizes = {s.ref: measure_sizes(s) for s in schemes}

        print(f"last hour: {args.queries} timed queries per model ...", flush=True)
        cutoff = dt.datetime.fromtimestamp((end_ms - HOUR_MS) / 1000, dt.timezone.utc)
        queries, time_filter = last_hour_queries(schemes, cutoff)
        query_times, counts = measure_queries(schemes, queries, args.queries)
        if len(set(counts.values())) != 1:
            print(f"WARNING: the last-hour queries disagree: {counts}", file=sys.stderr)

        print(f"by key: {args.lookups:,} rows looked up per model ...", flush=True)
        statements = key_lookups(schemes, args.rows, args.lookups)
        lookup_times = measure_lookups(schemes, statements, lookup_rounds(args))
        drop_tables(schemes)

    ours_size = sizes[BASELINE]
    rows = []
    for scheme in schemes:
        ref = scheme.ref
        size = sizes[ref]
        asked = ref in query_times
        rows.append(
            Row(
                db=args.db,
                db_version=version,
                scheme=scheme.name,
                key=scheme.key,
                created_at=scheme.created_at,
                rows=args.rows,
                saves=args.saves,
                rounds=args.rounds,
                queries=args.queries,
                lookups=args.lookups,
                lookup_rounds=lookup_rounds(args),
                bulk_rows_per_s=round(statistics.median(bulk_rates[ref])),
                bulk_ratio=per_round_ratio(bulk_rates, ref, higher_is_better=True),
                save_rows_per_s=round(statistics.median(save_rates[ref])),
                save_ratio=per_round_ratio(save_rates, ref, higher_is_better=True),
                table_bytes=size.table if size else None,
                pk_index_bytes=size.pk_index if size else None,
                time_index_bytes=size.time_index if size else None,
                total_bytes=size.total if size else None,
                size_ratio=round(size.total / ours_size.total, 2) if size and ours_size else None,
                pk_storage=size.pk_storage if size else "n/a",
                query_rows=counts[ref] if asked else None,
                query_ms=round(statistics.median(query_times[ref]), 3) if asked else None,
                query_ratio=(
                    per_round_ratio(query_times, ref, higher_is_better=False) if asked else None
                ),
                time_filter=(
                    (time_filter if scheme.snowflake else "created_at__gte") if asked else ""
                ),
                lookup_us=round(statistics.median(lookup_times[ref]), 2),
                lookup_ratio=per_round_ratio(lookup_times, ref, higher_is_better=False),
                mode=mode,
                machine=machine,
                date=today(),
            )
        )
    print_tables(rows, time_filter)
    return rows


def main() -> None:
    args = parse_args()
    rows = benchmark(args)
    default = f"database-{args.db}{'-quick' if args.quick else ''}.csv"
    path = args.csv or RESULTS / default
    write_csv(rows, path)


if __name__ == "__main__":
    main()
