"""A table cut into monthly partitions by its Snowflake key, against the same rows in one table.

Usage: python benchmarks/partitions.py [--db postgresql|mariadb ...] [--quick] [--rows N]
       [--rounds N] [--report-rounds N] [--drop-months N] [--json PATH] [--plot-out PATH]

Two tables with the same rows (``id bigint`` primary key, a ``smallint`` and an ``integer``):
``bench_partitioned``, partitioned by range of ``id`` the way ``SnowflakePartitions(
interval="month", ahead=3)`` lays it out (a ``before`` partition, one per month, three months
ahead, a catch-all), and ``bench_plain``, one table. The IDs are the twitter preset's, for one
node, evenly spread from the first day of the month eleven months ago until the moment the run
starts, and are made by the database itself (``INSERT ... SELECT`` over ``generate_series`` on
PostgreSQL, the sequence engine on MariaDB). Measured, in one run, on both tables:

- load: the ``INSERT ... SELECT`` of every row (one run);
- last hour: ``count(*)`` and ``sum()`` over ``id >= low AND id < high``, the range the
  ``id__generated_at__gte`` lookup makes (median of ``--rounds``);
- one-month report: the rows of the last full month, counted and summed by day (median of
  ``--report-rounds``);
- retention: the oldest month goes, then the next, ``--drop-months`` times: on the partitioned
  table ``DETACH PARTITION`` and ``DROP TABLE`` (PostgreSQL) or ``DROP PARTITION`` (MariaDB),
  on the plain one ``DELETE`` of the month's range, followed on PostgreSQL by ``VACUUM`` (which
  makes the space reusable; InnoDB purges in the background);
- disk: the tables' bytes before and after retention (PostgreSQL: ``pg_total_relation_size``,
  summed over the partitions; MariaDB: ``data_length + index_length`` and the size of the
  tablespace files), and after the rebuild that gives the plain table's space back
  (``VACUUM FULL``; ``OPTIMIZE TABLE``), with the rebuild's time.

The two tables run in alternation, the first one changing every round, and the ratios are the
medians of the per-round ratios: how many times better the partitioned table does (the plain
table's time or size divided by the partitioned one's; above 1, partitioning wins). ``EXPLAIN``
of each query on each table is stored with the figures, with the partitions it reads.

Defaults: 10,000,000 rows on PostgreSQL and 2,000,000 on MariaDB, about 2.5 minutes on 2 cores;
``--quick``: 200,000 and 100,000, under 10 seconds. Each database runs in a database made for it
(``flakeid_bench_partitions``, dropped at the end) on 127.0.0.1 as postgres and root (see
--host, --user). Results go to ``benchmarks/results/partitions.json``
(``partitions-quick.json`` with ``--quick``); ``--plot-out`` draws them (needs matplotlib),
as ``python benchmarks/plot_partitions.py`` does from the JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS, describe, today
from django_flakeid import PRESET_TWITTER, Layout
from django_flakeid.intervals import Span, interval_start, spans_from

DATABASES = ("postgresql", "mariadb")
NAMES = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
#: Sized for a 2-core machine: a few minutes of loading in all.
DEFAULT_ROWS = {"postgresql": 10_000_000, "mariadb": 2_000_000}
QUICK_ROWS = {"postgresql": 200_000, "mariadb": 100_000}
DEFAULT_PORTS = {"postgresql": 5432, "mariadb": 3306}
DEFAULT_USERS = {"postgresql": "postgres", "mariadb": "root"}
NAME = "flakeid_bench_partitions"
PARTITIONED = "bench_partitioned"
PLAIN = "bench_plain"
TABLES = (PARTITIONED, PLAIN)
#: Months holding rows: the current one and the eleven before it.
MONTHS = 12
#: Empty months after the current one, as SnowflakePartitions' default ``ahead`` makes them.
AHEAD = 3
#: The node every row comes from (datacenter, machine).
NODE = (1, 7)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: Spreads the payload over its range; a prime, so no row count lines up with it.
SPREAD = 7919


@dataclass(frozen=True)
class Data:
    """The rows both tables hold: row ``n`` of ``rows`` is stamped ``n * span_ms // rows`` ms
    after ``start`` (so they end just before ``end``) with sequence ``n % 4096``."""

    layout: Layout
    rows: int
    end_ms: int
    spans: tuple[Span, ...]

    @property
    def start_ms(self) -> int:
        return int(self.spans[0].start.timestamp() * 1000)

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def id_of(self, n: int) -> int:
        when = self.start_ms + n * self.span_ms // self.rows
        return self.layout.encode(when, *NODE, n % (self.layout.max_sequence + 1))

    def id_sql(self, n: str, divide: str) -> str:
        """The SQL of :meth:`id_of` for a row number ``n``: adding the offset in milliseconds,
        shifted into the timestamp field, to the first ID is setting the field to the sum."""
        base = self.id_of(0)
        offset = f"({n} * {self.span_ms} {divide} {self.rows})"
        sequence = f"{n} % {self.layout.max_sequence + 1}"
        return f"{base} + ({offset} << {self.layout.timestamp_shift}) + {sequence}"

    def rows_from(self, moment_ms: int) -> int:
        """How many rows are stamped at or after ``moment_ms``."""
        offset = moment_ms - self.start_ms
        # Row n is there when n * span // rows >= offset, that is n >= offset * rows / span.
        first = -(-offset * self.rows // self.span_ms)
        return self.rows - min(max(first, 0), self.rows)

    @property
    def with_rows(self) -> tuple[Span, ...]:
        return self.spans[:MONTHS]


def make_data(layout: Layout, rows: int, end_ms: int) -> Data:
    start = interval_start(end_ms, "month")
    for _ in range(MONTHS - 1):
        start = interval_start(start - dt.timedelta(days=1), "month")
    return Data(layout, rows, end_ms, tuple(spans_from(layout, "month", start, MONTHS + AHEAD)))


@dataclass
class Size:
    #: What the table's data and indexes take.
    data_bytes: int
    #: Its files on disk (the same figure on PostgreSQL).
    file_bytes: int


@dataclass
class Measurement:
    name: str
    what: str
    runs: int
    partitioned_ms: float
    plain_ms: float
    #: Median of the per-round ratios plain / partitioned: above 1, partitioning wins.
    ratio: float
    rows: int | None = None
    #: Retention on PostgreSQL: the plain table's DELETE and VACUUM apart.
    plain_parts_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    query: str
    sql: dict[str, str]
    plan: dict[str, list[str]]
    #: The partitions the partitioned table's plan reads, and how many it may read.
    partitions_read: list[str]
    partitions_expected: int
    partitions_total: int
    pruned: bool


@dataclass
class Result:
    db: str
    db_version: str
    rows: int
    months: int
    partitions: int
    first_id: str
    last_id: str
    rows_from: str
    rows_until: str
    measurements: list[Measurement]
    disk: dict[str, dict[str, Size]]
    rebuild_seconds: float
    rebuild: str
    plans: list[Plan]
    pruned: bool
    dropped_months: int
    seconds: float


class Server:
    """One database server, and the SQL the benchmark speaks to it."""

    db = ""
    #: How the partitioned table loses a month, and how the plain one gets its space back.
    drop_statement = ""
    rebuild = ""
    create_statement = ""
    #: Integer division.
    divide = ""
    drop_database_statement = ""

    def __init__(self, args: argparse.Namespace, data: Data) -> None:
        self.args = args
        self.data = data
        self.host = args.host
        self.port = args.port or DEFAULT_PORTS[self.db]
        self.user = args.user or DEFAULT_USERS[self.db]
        self.password = args.password
        self.conn: Any = None

    def admin(self, statement: str) -> None:
        raise NotImplementedError

    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def timed(self, sql: str) -> tuple[float, list[tuple[Any, ...]]]:
        """Milliseconds to run ``sql`` and fetch its rows, and the rows."""
        start = time.perf_counter()
        found = self.run(sql)
        return (time.perf_counter() - start) * 1000, found

    def version(self) -> str:
        raise NotImplementedError

    def partition_names(self) -> list[str]:
        raise NotImplementedError

    def create_tables(self) -> None:
        raise NotImplementedError

    def insert_sql(self, table: str) -> str:
        raise NotImplementedError

    def analyze(self) -> None:
        raise NotImplementedError

    def size(self, table: str) -> Size:
        raise NotImplementedError

    def day(self) -> str:
        """The SQL of a row's day since 1970, from its ID alone."""
        layout = self.data.layout
        return f"((id >> {layout.timestamp_shift}) + {layout.epoch_ms}) {self.divide} {DAY_MS}"

    def explain(self, sql: str) -> tuple[list[str], list[str]]:
        """The plan of ``sql`` as lines, and the partitions it reads."""
        raise NotImplementedError

    def drop_month(self, span: Span) -> None:
        raise NotImplementedError

    def delete_month(self, span: Span) -> dict[str, float]:
        """Milliseconds the plain table takes to lose a month, by step."""
        raise NotImplementedError

    def rebuild_plain(self) -> None:
        raise NotImplementedError

    def create_database(self) -> None:
        self.drop_database()
        self.admin(self.create_statement)

    def drop_database(self) -> None:
        self.admin(self.drop_database_statement)


class PostgreSQL(Server):
    db = "postgresql"
    drop_statement = "DETACH PARTITION + DROP TABLE"
    divide = "/"
    rebuild = "VACUUM FULL (ACCESS EXCLUSIVE lock: no reads or writes meanwhile)"
    create_statement = f'CREATE DATABASE "{NAME}"'
    drop_database_statement = f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)'

    def _connect(self, dbname: str) -> Any:
        try:
            import psycopg
        except ImportError:
            sys.exit("PostgreSQL needs psycopg: pip install -e '.[postgresql]'")
        # Django binds parameters on the client and never prepares, so every query is planned
        # with its bounds in hand: prepared statements would prune at run time instead.
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            autocommit=True,
            prepare_threshold=None,
        )

    def admin(self, statement: str) -> None:
        with self._connect("postgres") as conn:
            conn.execute(statement.encode())

    def connect(self) -> None:
        self.conn = self._connect(NAME)

    def version(self) -> str:
        (text,) = self.run("SELECT version()")[0]
        return " ".join(str(text).split()[:2])

    def partition_names(self) -> list[str]:
        months = [f"{PARTITIONED}_{span.suffix}" for span in self.data.spans]
        return [f"{PARTITIONED}_before", *months, f"{PARTITIONED}_default"]

    def create_tables(self) -> None:
        columns = "id bigint NOT NULL, kind smallint NOT NULL, amount integer NOT NULL"
        self.run(f"CREATE TABLE {PLAIN} ({columns}, PRIMARY KEY (id))")
        self.run(
            f"CREATE TABLE {PARTITIONED} ({columns}, PRIMARY KEY (id)) PARTITION BY RANGE (id)"
        )
        spans = self.data.spans
        before, *months, default = self.partition_names()
        self.run(
            f"CREATE TABLE {before} PARTITION OF {PARTITIONED} "
            f"FOR VALUES FROM (MINVALUE) TO ({spans[0].low})"
        )
        for name, span in zip(months, spans, strict=True):
            self.run(
                f"CREATE TABLE {name} PARTITION OF {PARTITIONED} "
                f"FOR VALUES FROM ({span.low}) TO ({span.high})"
            )
        self.run(f"CREATE TABLE {default} PARTITION OF {PARTITIONED} DEFAULT")

    def insert_sql(self, table: str) -> str:
        return (
            f"INSERT INTO {table} (id, kind, amount) "
            f"SELECT {self.data.id_sql('n', self.divide)}, n % 7, n * {SPREAD} % 1000 "
            f"FROM generate_series(0, {self.data.rows - 1}::bigint) AS g(n)"
        )

    def analyze(self) -> None:
        # As autovacuum would leave them: statistics, and a visibility map for index-only scans.
        for table in TABLES:
            self.run(f"VACUUM ANALYZE {table}")

    def size(self, table: str) -> Size:
        # A partitioned table has no storage of its own: its partitions have it all. A plain
        # table has no partition tree.
        ((total,),) = self.run(
            f"SELECT pg_total_relation_size('{table}') + COALESCE(("
            "SELECT SUM(pg_total_relation_size(relid)) "
            f"FROM pg_partition_tree('{table}') WHERE isleaf), 0)"
        )
        return Size(int(total), int(total))

    def explain(self, sql: str) -> tuple[list[str], list[str]]:
        lines = [str(row[0]) for row in self.run(f"EXPLAIN (COSTS OFF) {sql}")]
        names = self.partition_names()
        named = re.findall(rf"\b{PARTITIONED}_\w+", "\n".join(lines))
        return lines, [name for name in names if name in named]

    def drop_month(self, span: Span) -> None:
        name = f"{PARTITIONED}_{span.suffix}"
        self.run(f"ALTER TABLE {PARTITIONED} DETACH PARTITION {name}")
        self.run(f"DROP TABLE {name}")

    def delete_month(self, span: Span) -> dict[str, float]:
        deleted, _ = self.timed(f"DELETE FROM {PLAIN} WHERE id >= {span.low} AND id < {span.high}")
        vacuumed, _ = self.timed(f"VACUUM {PLAIN}")
        return {"DELETE": deleted, "VACUUM": vacuumed}

    def rebuild_plain(self) -> None:
        self.run(f"VACUUM FULL {PLAIN}")


class MariaDB(Server):
    db = "mariadb"
    drop_statement = "DROP PARTITION"
    divide = "DIV"
    rebuild = "OPTIMIZE TABLE (an online rebuild: writes wait only at its start and end)"
    create_statement = f"CREATE DATABASE `{NAME}` CHARACTER SET utf8mb4"
    drop_database_statement = f"DROP DATABASE IF EXISTS `{NAME}`"

    def _connect(self, database: str | None) -> Any:
        try:
            import MySQLdb
        except ImportError:
            sys.exit("MariaDB needs mysqlclient: pip install -e '.[mariadb]'")
        options = {"database": database} if database else {}
        return MySQLdb.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            autocommit=True,
            **options,
        )

    def admin(self, statement: str) -> None:
        conn = self._connect(None)
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def connect(self) -> None:
        self.conn = self._connect(NAME)

    def version(self) -> str:
        (text,) = self.run("SELECT version()")[0]
        return f"MariaDB {str(text).split('-', 1)[0]}"

    def partition_names(self) -> list[str]:
        return ["before", *(span.suffix for span in self.data.spans), "pmax"]

    def create_tables(self) -> None:
        columns = "id BIGINT NOT NULL, kind SMALLINT NOT NULL, amount INT NOT NULL"
        self.run(f"CREATE TABLE {PLAIN} ({columns}, PRIMARY KEY (id)) ENGINE=InnoDB")
        spans = self.data.spans
        parts = [f"PARTITION `before` VALUES LESS THAN ({spans[0].low})"]
        parts += [f"PARTITION {s.suffix} VALUES LESS THAN ({s.high})" for s in spans]
        parts.append("PARTITION pmax VALUES LESS THAN MAXVALUE")
        self.run(
            f"CREATE TABLE {PARTITIONED} ({columns}, PRIMARY KEY (id)) ENGINE=InnoDB "
            f"PARTITION BY RANGE (id) ({', '.join(parts)})"
        )

    def insert_sql(self, table: str) -> str:
        return (
            f"INSERT INTO {table} (id, kind, amount) "
            f"SELECT {self.data.id_sql('seq', self.divide)}, seq % 7, seq * {SPREAD} % 1000 "
            f"FROM seq_0_to_{self.data.rows - 1}"
        )

    def analyze(self) -> None:
        for table in TABLES:
            self.run(f"ANALYZE TABLE {table}")

    def size(self, table: str) -> Size:
        # information_schema's lengths come from the statistics ANALYZE TABLE refreshes.
        self.run(f"ANALYZE TABLE {table}")
        ((data, index),) = self.run(
            "SELECT data_length, index_length FROM information_schema.tables "
            f"WHERE table_schema = DATABASE() AND table_name = '{table}'"
        )
        # One tablespace file per table, or per partition: <table>#P#<partition>.
        ((files,),) = self.run(
            "SELECT COALESCE(SUM(allocated_size), 0) "
            "FROM information_schema.innodb_sys_tablespaces "
            f"WHERE name = '{NAME}/{table}' OR name LIKE '{NAME}/{table}#P#%'"
        )
        return Size(int(data) + int(index), int(files))

    def explain(self, sql: str) -> tuple[list[str], list[str]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(f"EXPLAIN PARTITIONS {sql}")
            columns = [column[0] for column in cursor.description]
            found = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()
        lines = [
            "  ".join(f"{name}={row[name]}" for name in columns if row[name] is not None)
            for row in found
        ]
        read = [name for row in found for name in str(row["partitions"] or "").split(",") if name]
        return lines, read

    def drop_month(self, span: Span) -> None:
        self.run(f"ALTER TABLE {PARTITIONED} DROP PARTITION {span.suffix}")

    def delete_month(self, span: Span) -> dict[str, float]:
        deleted, _ = self.timed(f"DELETE FROM {PLAIN} WHERE id >= {span.low} AND id < {span.high}")
        return {"DELETE": deleted}

    def rebuild_plain(self) -> None:
        self.run(f"OPTIMIZE TABLE {PLAIN}")


SERVERS: dict[str, type[Server]] = {"postgresql": PostgreSQL, "mariadb": MariaDB}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", choices=DATABASES, help="a database (repeat)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 200,000 rows on PostgreSQL, 100,000 on MariaDB, few rounds",
    )
    parser.add_argument(
        "--rows",
        type=int,
        help="rows per table on every database (default: PostgreSQL 10,000,000, MariaDB 2,000,000)",
    )
    parser.add_argument(
        "--rounds", type=int, help="timed last-hour queries per table (default 50; 10 with --quick)"
    )
    parser.add_argument(
        "--report-rounds",
        type=int,
        help="timed one-month reports per table (default 10; 3 with --quick)",
    )
    parser.add_argument(
        "--drop-months",
        type=int,
        default=3,
        help="the oldest months retention drops, one per round (default 3, at most 6)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address")
    parser.add_argument("--port", type=int, help="server port (default: 5432 or 3306)")
    parser.add_argument("--user", help="server user (default: postgres or root)")
    parser.add_argument("--password", default="", help="server password (default: none)")
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the results (default: benchmarks/results/partitions.json, "
        "or partitions-quick.json with --quick)",
    )
    parser.add_argument("--plot-out", type=Path, help="also draw the results into this PNG")
    args = parser.parse_args()
    args.db = args.db or list(DATABASES)
    args.rounds = args.rounds or (10 if args.quick else 50)
    args.report_rounds = args.report_rounds or (3 if args.quick else 10)
    # The month of the report (the last full one) and the current one must stay.
    if not 1 <= args.drop_months <= MONTHS - 6:
        parser.error(f"--drop-months must be from 1 to {MONTHS - 6}")
    if args.rows is not None and args.rows < MONTHS * 1000:
        parser.error(f"--rows must be at least {MONTHS * 1000:,}: a few rows every hour")
    if args.port is not None and len(args.db) > 1:
        parser.error("--port needs a single --db")
    return args


def alternate(round_: int) -> Sequence[str]:
    # The table that goes first changes every round, so warm caches and drift favour neither.
    return TABLES if round_ % 2 == 0 else TABLES[::-1]


def compare(
    name: str,
    what: str,
    runs: int,
    measure: Callable[[str, int], float],
    rows: int | None = None,
) -> Measurement:
    times: dict[str, list[float]] = {table: [] for table in TABLES}
    for i in range(runs):
        for table in alternate(i):
            times[table].append(measure(table, i))
    ratios = [plain / part for part, plain in zip(times[PARTITIONED], times[PLAIN], strict=True)]
    return Measurement(
        name=name,
        what=what,
        runs=runs,
        partitioned_ms=round(statistics.median(times[PARTITIONED]), 3),
        plain_ms=round(statistics.median(times[PLAIN]), 3),
        ratio=round(statistics.median(ratios), 2),
        rows=rows,
    )


def repeat_query(server: Server, sql: Callable[[str], str]) -> Callable[[str, int], float]:
    def measure(table: str, _: int) -> float:
        elapsed, _rows = server.timed(sql(table))
        return elapsed

    return measure


def same_answer(server: Server, sql: Callable[[str], str]) -> list[tuple[Any, ...]]:
    """Both tables' answer to ``sql``, which must agree; also the unmeasured first run."""
    partitioned, plain = (server.run(sql(table)) for table in TABLES)
    if partitioned != plain:
        sys.exit(f"the tables disagree on {sql('<table>')}: {partitioned[:3]} != {plain[:3]}")
    return partitioned


def check_rows(server: Server) -> None:
    data = server.data
    want = (data.rows, data.id_of(0), data.id_of(data.rows - 1))
    for table in TABLES:
        count, low, high = server.run(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}")[0]
        if (int(count), int(low), int(high)) != want:
            sys.exit(f"{table}: {count} rows from {low} to {high}, expected {want}")
    if server.db == "postgresql":
        # Not one row may have fallen through to the catch-all.
        default = server.partition_names()[-1]
        (stray,) = server.run(f"SELECT COUNT(*) FROM {default}")[0]
        if stray:
            sys.exit(f"{default} holds {stray} rows: the partitions miss part of the range")


def overlapping(spans: Sequence[Span], low: int, high: int) -> int:
    return sum(1 for span in spans if span.low < high and low < span.high)


def plan_of(server: Server, query: str, sql: Callable[[str], str], low: int, high: int) -> Plan:
    plans = {}
    read: list[str] = []
    for table in TABLES:
        lines, partitions = server.explain(sql(table))
        plans[table] = lines
        if table == PARTITIONED:
            read = partitions
    expected = overlapping(server.data.spans, low, high)
    return Plan(
        query=query,
        sql={table: sql(table) for table in TABLES},
        plan=plans,
        partitions_read=read,
        partitions_expected=expected,
        partitions_total=len(server.partition_names()),
        pruned=0 < len(read) <= expected,
    )


def load(server: Server) -> Measurement:
    """Fill both tables, one run each, and check they hold the rows meant for them."""
    rows = server.data.rows
    print(f"  loading {rows:,} rows into each table ...", flush=True)
    load_ms = {}
    for table in TABLES:
        load_ms[table], _ = server.timed(server.insert_sql(table))
        print(f"    {table}: {load_ms[table] / 1000:.1f} s", flush=True)
    server.analyze()
    check_rows(server)
    return Measurement(
        name="load",
        what="INSERT ... SELECT of every row, one run",
        runs=1,
        partitioned_ms=round(load_ms[PARTITIONED], 1),
        plain_ms=round(load_ms[PLAIN], 1),
        ratio=round(load_ms[PLAIN] / load_ms[PARTITIONED], 2),
        rows=rows,
    )


def queries(server: Server) -> tuple[list[Measurement], list[Plan]]:
    """The last hour and a month's report by day, timed, with their plans."""
    data = server.data
    args = server.args
    hour_from = data.end_ms - HOUR_MS
    hour_low, hour_high = data.layout.id_range(hour_from, data.end_ms)

    def last_hour(table: str) -> str:
        return (
            f"SELECT COUNT(*), SUM(amount) FROM {table} WHERE id >= {hour_low} AND id < {hour_high}"
        )

    # The last full month: retention never reaches it.
    month = data.with_rows[-2]

    def report(table: str) -> str:
        return (
            f"SELECT {server.day()} AS day, COUNT(*), SUM(amount) FROM {table} "
            f"WHERE id >= {month.low} AND id < {month.high} GROUP BY day ORDER BY day"
        )

    plans = [
        plan_of(server, "last hour", last_hour, hour_low, hour_high),
        plan_of(server, "one-month report", report, month.low, month.high),
    ]
    ((hour_rows, _),) = same_answer(server, last_hour)
    if int(hour_rows) != data.rows_from(hour_from):
        sys.exit(f"the last hour holds {hour_rows} rows, not {data.rows_from(hour_from)}")
    days = same_answer(server, report)
    month_rows = sum(int(count) for _, count, _ in days)

    print(f"  last hour ({int(hour_rows):,} rows): {args.rounds} rounds ...", flush=True)
    hour = compare(
        "last hour",
        "COUNT(*), SUM(amount) WHERE id >= low AND id < high, the last hour",
        args.rounds,
        repeat_query(server, last_hour),
        rows=int(hour_rows),
    )
    print(
        f"  one-month report ({month.start:%B %Y}, {month_rows:,} rows): "
        f"{args.report_rounds} rounds ...",
        flush=True,
    )
    by_day = compare(
        "one-month report",
        f"COUNT(*), SUM(amount) by day over {month.start:%B %Y} ({len(days)} days)",
        args.report_rounds,
        repeat_query(server, report),
        rows=month_rows,
    )
    return [hour, by_day], plans


def retention(server: Server) -> Measurement:
    """The oldest months gone, one per round, from both tables."""
    months = server.data.with_rows[: server.args.drop_months]
    print(f"  retention: dropping the {len(months)} oldest months ...", flush=True)
    dropped_rows = 0
    for span in months:
        ((count,),) = server.run(
            f"SELECT COUNT(*) FROM {PLAIN} WHERE id >= {span.low} AND id < {span.high}"
        )
        dropped_rows += int(count)
    steps: dict[str, list[float]] = {}

    def drop(table: str, i: int) -> float:
        if table == PARTITIONED:
            start = time.perf_counter()
            server.drop_month(months[i])
            return (time.perf_counter() - start) * 1000
        taken = server.delete_month(months[i])
        for step, elapsed in taken.items():
            steps.setdefault(step, []).append(elapsed)
        return sum(taken.values())

    plain_steps = "DELETE + VACUUM" if server.db == "postgresql" else "DELETE"
    measured = compare(
        "retention",
        f"a month gone: {server.drop_statement} against {plain_steps}",
        len(months),
        drop,
        rows=round(dropped_rows / len(months)),
    )
    measured.plain_parts_ms = {
        step: round(statistics.median(times), 1) for step, times in steps.items()
    }
    same_answer(server, lambda table: f"SELECT COUNT(*), MIN(id) FROM {table}")
    return measured


def benchmark(server: Server) -> Result:
    data = server.data
    started = time.perf_counter()
    server.create_database()
    try:
        server.connect()
        version = server.version()
        print(f"{version} ...", flush=True)
        server.create_tables()
        measurements = [load(server)]
        disk = {table: {"before": server.size(table)} for table in TABLES}
        timed, plans = queries(server)
        measurements += [*timed, retention(server)]
        for table in TABLES:
            disk[table]["after retention"] = server.size(table)

        print(f"  rebuilding {PLAIN} to give its space back ...", flush=True)
        start = time.perf_counter()
        server.rebuild_plain()
        rebuild_seconds = time.perf_counter() - start
        disk[PLAIN]["after rebuild"] = server.size(PLAIN)
    finally:
        server.close()
        server.drop_database()
    return Result(
        db=server.db,
        db_version=version,
        rows=data.rows,
        months=MONTHS,
        partitions=len(server.partition_names()),
        first_id=str(data.id_of(0)),
        last_id=str(data.id_of(data.rows - 1)),
        rows_from=data.spans[0].start.isoformat(),
        rows_until=dt.datetime.fromtimestamp(data.end_ms / 1000, dt.timezone.utc).isoformat(),
        measurements=measurements,
        disk=disk,
        rebuild_seconds=round(rebuild_seconds, 2),
        rebuild=server.rebuild,
        plans=plans,
        pruned=all(plan.pruned for plan in plans),
        dropped_months=server.args.drop_months,
        seconds=round(time.perf_counter() - started, 1),
    )


def duration(ms: float) -> str:
    if ms >= 10_000:
        return f"{ms / 1000:,.1f} s"
    if ms >= 100:
        return f"{ms:,.0f} ms"
    return f"{ms:.2f} ms" if ms >= 1 else f"{ms:.3f} ms"


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def ratio_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def disk_lines(result: Result) -> list[tuple[str, str, str, str]]:
    """(state, partitioned, plain, ratio) of the tables' sizes."""
    disk = result.disk
    files = result.db == "mariadb"

    def both(size: Size) -> str:
        text = megabytes(size.data_bytes)
        return f"{text} ({megabytes(size.file_bytes)} files)" if files else text

    lines = []
    for state in ("before", "after retention"):
        part, plain = disk[PARTITIONED][state], disk[PLAIN][state]
        label = state if state == "before" else f"after dropping {result.dropped_months} months"
        lines.append(
            (label, both(part), both(plain), ratio_text(plain.file_bytes / part.file_bytes))
        )
    rebuild = f"after the rebuild ({result.rebuild_seconds:.1f} s)"
    lines.append((rebuild, "", both(disk[PLAIN]["after rebuild"]), ""))
    return lines


def print_result(result: Result) -> None:
    print(
        f"\n{result.db_version}: {result.rows:,} rows from {result.rows_from[:10]} to "
        f"{result.rows_until[:16]}, {result.partitions} partitions; ratio: the plain table's "
        "figure / the partitioned one's (above 1, partitioning wins)"
    )
    print(
        f"  {'measurement':18} {'rows':>11} {'runs':>5} {'partitioned':>12} {'plain':>12} "
        f"{'ratio':>6}"
    )
    for m in result.measurements:
        print(
            f"  {m.name:18} {m.rows or 0:>11,} {m.runs:>5} {duration(m.partitioned_ms):>12} "
            f"{duration(m.plain_ms):>12} {ratio_text(m.ratio):>6}"
        )
        if m.plain_parts_ms:
            steps = ", ".join(f"{step} {duration(ms)}" for step, ms in m.plain_parts_ms.items())
            print(f"  {'':18} plain: {steps}")
    print(f"\n  {'disk':28} {'partitioned':>28} {'plain':>28} {'ratio':>6}")
    for state, part, plain, ratio in disk_lines(result):
        print(f"  {state:28} {part:>28} {plain:>28} {ratio:>6}")
    print(f"  rebuild: {result.rebuild}")
    for plan in result.plans:
        verdict = "pruned" if plan.pruned else "NOT PRUNED"
        print(
            f"\n  EXPLAIN {plan.query}: the partitioned table reads "
            f"{len(plan.partitions_read)} of {plan.partitions_total} partitions "
            f"({', '.join(plan.partitions_read) or 'none named'}): {verdict}"
        )
        for table in TABLES:
            print(f"    {table}:")
            for line in plan.plan[table]:
                print(f"      {line}")


def markdown(results: list[Result]) -> str:
    lines = [
        "| database | rows | measurement | partitioned | plain table | plain ÷ partitioned |",
        "|----------|-----:|-------------|------------:|------------:|--------------------:|",
    ]
    for r in results:
        for m in r.measurements:
            plain = duration(m.plain_ms)
            if m.plain_parts_ms:
                plain += " (" + " + ".join(duration(ms) for ms in m.plain_parts_ms.values()) + ")"
            lines.append(
                f"| {r.db_version} | {r.rows:,} | {m.name} ({m.rows or 0:,} rows) | "
                f"{duration(m.partitioned_ms)} | {plain} | {ratio_text(m.ratio)} |"
            )
        for state, part, plain, ratio in disk_lines(r):
            lines.append(
                f"| {r.db_version} | {r.rows:,} | disk {state} | {part} | {plain} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    layout = Layout(**PRESET_TWITTER)
    mode = "quick" if args.quick else "full"
    machine = describe()
    print(f"{machine}; {mode} run; {', '.join(NAMES[db] for db in args.db)}")
    started = time.perf_counter()
    results = []
    for db in args.db:
        rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)[db]
        data = make_data(layout, rows, time.time_ns() // 1_000_000)
        result = benchmark(SERVERS[db](args, data))
        print_result(result)
        results.append(result)
    print()
    print(markdown(results))
    report = {
        "benchmark": "partitions",
        "mode": mode,
        "machine": machine,
        "date": today(),
        "layout": f"twitter {layout.key}",
        "node": list(NODE),
        "months": MONTHS,
        "ahead": AHEAD,
        "rounds": args.rounds,
        "report_rounds": args.report_rounds,
        "drop_months": args.drop_months,
        "seconds": round(time.perf_counter() - started, 1),
        "databases": [asdict(result) for result in results],
    }
    path = args.json or RESULTS / ("partitions-quick.json" if args.quick else "partitions.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path}")
    if args.plot_out:
        from benchmarks.plot_partitions import plot

        plot(report, args.plot_out)


if __name__ == "__main__":
    main()
