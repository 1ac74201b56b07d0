"""Re-keying and backfilling at scale: time and peak memory against the number of rows.

Usage: python benchmarks/rekey.py [--db postgresql|mariadb ...] [--rows N ...] [--quick]
       [--batch-size N] [--csv PATH]

A parent table of N rows with legacy keys 1..N and an indexed ``created_at``, and a child
table of N rows, each with a foreign key to its own parent, the children of one batch of
parents scattered over the child table. Each measurement runs in a process of its own, on
tables it creates and loads (with ``INSERT ... SELECT``, in the database) in a database made
for it (``bench_rekey``, dropped at the end), and reports the job's time and its peak
resident memory (``ru_maxrss``) beside the memory the process had before the job started:

- ``rekey``: ``rekey(Parent, from_field="created_at")``: N new keys stamped with each
  row's time, written into the N children's foreign keys;
- ``rekey-new``: ``rekey(Parent)``: N new keys from the generator, in key order;
- ``backfill``: ``backfill(Parent, "public_id", from_field="created_at")``: N IDs in a
  nullable column.

Time should grow in proportion to N (each batch costs the same: its rows are found through
an index), and memory should not grow at all (one batch in memory at a time). Defaults:
100,000 and 1,000,000 rows on PostgreSQL and MariaDB; ``--quick``: 1,000 and 10,000.
PostgreSQL and MariaDB are reached on 127.0.0.1 as postgres and root (see --host, --user).
Results go to ``benchmarks/results/rekey.csv`` (``rekey-quick.csv`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS, describe, today, write_csv

ROOT = Path(__file__).resolve().parent.parent

DATABASES = ("postgresql", "mariadb")
JOBS = ("rekey", "rekey-new", "backfill")
DEFAULT_ROWS = (100_000, 1_000_000)
QUICK_ROWS = (1_000, 10_000)
DEFAULT_PORTS = {"postgresql": 5432, "mariadb": 3306}
DEFAULT_USERS = {"postgresql": "postgres", "mariadb": "root"}
NAME = "bench_rekey"
#: Children are spread over the parents by multiplying by a prime no N here is a multiple of.
SPREAD = 7919


@dataclass
class Row:
    db: str
    db_version: str
    job: str
    rows: int
    child_rows: int
    references: int
    batch_size: int
    seconds: float
    rows_per_s: int
    peak_rss_mib: float
    rss_growth_mib: float
    mode: str
    machine: str
    date: str


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", choices=DATABASES, help="a database (repeat)")
    parser.add_argument("--rows", action="append", type=int, help="parent rows (repeat)")
    parser.add_argument("--job", action="append", choices=JOBS, help="a job (repeat)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 and 10,000 rows")
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per batch (1000)")
    parser.add_argument("--host", default="127.0.0.1", help="server address")
    parser.add_argument("--port", type=int, help="server port (default: 5432 or 3306)")
    parser.add_argument("--user", help="server user (default: postgres or root)")
    parser.add_argument("--password", default="", help="server password (default: none)")
    parser.add_argument("--csv", type=Path, help="where to write the results")
    # Internal: run one measurement in this process and print it as JSON.
    parser.add_argument("--measure", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.db = args.db or list(DATABASES)
    args.rows = args.rows or list(QUICK_ROWS if args.quick else DEFAULT_ROWS)
    args.job = args.job or list(JOBS)
    return args


def server(args: argparse.Namespace, db: str) -> dict[str, Any]:
    return {
        "HOST": args.host,
        "PORT": str(args.port or DEFAULT_PORTS[db]),
        "USER": args.user or DEFAULT_USERS[db],
        "PASSWORD": args.password,
    }


def configure(args: argparse.Namespace, db: str, name: str = NAME) -> None:
    import django
    from django.conf import settings

    engine = {"postgresql": "postgresql", "mariadb": "mysql"}[db]
    database: dict[str, Any] = {"ENGINE": f"django.db.backends.{engine}", "NAME": name}
    if db == "mariadb":
        database["OPTIONS"] = {"charset": "utf8mb4"}
    settings.configure(
        # With DEBUG on, Django would keep every query in memory.
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django_flakeid", "benchmarks"],
        DATABASES={"default": {**database, **server(args, db)}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        FLAKEID={"preset": "twitter", "datacenter_id": 1, "machine_id": 7},
    )
    django.setup()


def define_models() -> tuple[Any, Any]:
    from django.db import models

    from django_flakeid.fields import SnowflakeAutoField, SnowflakeField

    class Parent(models.Model):
        # Switched in place from an AutoField: legacy keys 1..N.
        id = SnowflakeAutoField(primary_key=True)
        created_at = models.DateTimeField(db_index=True)
        public_id = SnowflakeField(null=True, default=None)
        payload = models.CharField(max_length=40)

        class Meta:
            app_label = "benchmarks"
            db_table = "bench_parent"

        def __str__(self) -> str:
            return self.payload

    class Child(models.Model):
        parent = models.ForeignKey(Parent, on_delete=models.CASCADE)
        payload = models.CharField(max_length=40)

        class Meta:
            app_label = "benchmarks"
            db_table = "bench_child"

        def __str__(self) -> str:
            return self.payload

    return Parent, Child


def setup(parent: Any, child: Any, rows: int) -> None:
    """Fresh tables with ``rows`` parents and children, loaded by the database itself."""
    from django.db import connection

    with connection.schema_editor() as editor:
        editor.create_model(parent)
        editor.create_model(child)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            numbers = f"generate_series(1, {rows}::bigint) AS g(n)"
            moment = "timestamptz '2024-01-01 00:00:00+00' + n * interval '1 second'"
        else:
            numbers = f"seq_1_to_{rows} AS g"
            moment = "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL g.seq SECOND"
        n = "n" if connection.vendor == "postgresql" else "g.seq"
        cursor.execute(
            "INSERT INTO bench_parent (id, created_at, public_id, payload) "
            f"SELECT {n}, {moment}, NULL, 'a parent row of forty characters, about' FROM {numbers}"
        )
        cursor.execute(
            "INSERT INTO bench_child (parent_id, payload) "
            f"SELECT MOD({n} * {SPREAD}, {rows}) + 1, 'a child row of forty characters, about.' "
            f"FROM {numbers}"
        )
        for table in ("bench_parent", "bench_child"):
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM ANALYZE {table}")
            else:
                cursor.execute(f"ANALYZE TABLE {table}")
                cursor.fetchall()


def measure(args: argparse.Namespace, db: str, rows: int, job: str) -> dict[str, Any]:
    """Load the tables, then run one job on them (in a process of its own)."""
    configure(args, db)
    from django_flakeid import conf
    from django_flakeid.backfill import backfill
    from django_flakeid.rekey import rekey

    parent, child = define_models()
    setup(parent, child, rows)
    conf.get_generator()
    before = peak_rss_kib()
    started = time.perf_counter()
    references = 0
    if job == "backfill":
        done = backfill(parent, "public_id", from_field="created_at", batch_size=args.batch_size)
        count = done.filled
    else:
        source = "created_at" if job == "rekey" else None
        result = rekey(parent, from_field=source, batch_size=args.batch_size)
        count, references = result.rekeyed, result.references
    seconds = time.perf_counter() - started
    return {
        "rows": count,
        "references": references,
        "seconds": seconds,
        "peak_rss_kib": peak_rss_kib(),
        "rss_before_kib": before,
        "version": database_version(),
    }


def peak_rss_kib() -> int:
    # Kibibytes on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def database_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        text = str(cursor.fetchone()[0])
    if connection.vendor == "postgresql":
        return " ".join(text.split()[:2])
    return f"MariaDB {text.split('-', 1)[0]}"


def admin(args: argparse.Namespace, db: str, statement: str) -> None:
    if db == "postgresql":
        import psycopg

        with psycopg.connect(
            host=args.host,
            port=args.port or DEFAULT_PORTS[db],
            user=args.user or DEFAULT_USERS[db],
            password=args.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(statement.encode())
        return
    import MySQLdb

    conn = MySQLdb.connect(
        host=args.host,
        port=args.port or DEFAULT_PORTS[db],
        user=args.user or DEFAULT_USERS[db],
        password=args.password,
    )
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def fresh_database(args: argparse.Namespace, db: str) -> None:
    drop_database(args, db)
    if db == "postgresql":
        admin(args, db, f'CREATE DATABASE "{NAME}"')
    else:
        admin(args, db, f"CREATE DATABASE `{NAME}` CHARACTER SET utf8mb4")


def drop_database(args: argparse.Namespace, db: str) -> None:
    if db == "postgresql":
        admin(args, db, f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    else:
        admin(args, db, f"DROP DATABASE IF EXISTS `{NAME}`")


def child(args: argparse.Namespace, db: str, rows: int, *flags: str) -> str:
    command = [sys.executable, __file__, "--db", db, "--rows", str(rows), *flags]
    command += ["--batch-size", str(args.batch_size), "--host", args.host]
    for option in ("port", "user"):
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option}", str(value)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.password:
        environment["FLAKEID_BENCH_PASSWORD"] = args.password
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return done.stdout


def run(args: argparse.Namespace) -> list[Row]:
    mode = "quick" if args.quick else "full"
    results = []
    for db in args.db:
        for rows in args.rows:
            for job in args.job:
                fresh_database(args, db)
                try:
                    report = json.loads(child(args, db, rows, "--measure", job))
                finally:
                    drop_database(args, db)
                peak = report["peak_rss_kib"] / 1024
                row = Row(
                    db=db,
                    db_version=report["version"],
                    job=job,
                    rows=report["rows"],
                    child_rows=rows,
                    references=report["references"],
                    batch_size=args.batch_size,
                    seconds=round(report["seconds"], 2),
                    rows_per_s=round(report["rows"] / report["seconds"]),
                    peak_rss_mib=round(peak, 1),
                    rss_growth_mib=round(peak - report["rss_before_kib"] / 1024, 1),
                    mode=mode,
                    machine=describe(),
                    date=today(),
                )
                print(
                    f"{db:10} {job:9} {rows:>9,} rows  {row.seconds:8.2f} s  "
                    f"{row.rows_per_s:>7,} rows/s  peak {row.peak_rss_mib:6.1f} MiB "
                    f"(+{row.rss_growth_mib:.1f})",
                    flush=True,
                )
                results.append(row)
    return results


def markdown(rows: list[Row]) -> str:
    lines = [
        "| database | job | rows | time | rows/s | peak memory (growth during the job) |",
        "|----------|-----|-----:|-----:|-------:|------------------------------------:|",
    ]
    lines.extend(
        f"| {row.db_version} | {row.job} | {row.rows:,} | {row.seconds:.1f} s | "
        f"{row.rows_per_s:,} | {row.peak_rss_mib:.0f} MiB (+{row.rss_growth_mib:.1f}) |"
        for row in rows
    )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    args.password = os.environ.get("FLAKEID_BENCH_PASSWORD", args.password)
    if args.measure:
        (db,) = args.db
        (rows,) = args.rows
        print(json.dumps(measure(args, db, rows, args.measure)))
        return
    results = run(args)
    print()
    print(markdown(results))
    print()
    default = RESULTS / ("rekey-quick.csv" if args.quick else "rekey.csv")
    write_csv(results, args.csv or default)


if __name__ == "__main__":
    main()
