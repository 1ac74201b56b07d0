"""A real server: gunicorn workers with leased machine IDs, hammered by concurrent clients.

Usage: python benchmarks/gunicorn_leases.py [--workers 4] [--clients 8] [--requests 2000]

Needs gunicorn and a PostgreSQL server (127.0.0.1:5432, user postgres, trust auth; override
with PGHOST/PGPORT/PGUSER). It creates a scratch database, migrates the example project into
it, serves it with ``FLAKEID_MACHINE_ID=lease``, sends the create requests, checks that every
request succeeded with a distinct ID and that the workers leased distinct machine IDs, stops
the server, checks that the leases were released, and drops the database. Exits non-zero on
any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=int(os.environ.get("PGPORT", "5432")),
        user=os.environ.get("PGUSER", "postgres"),
        dbname="postgres",
        autocommit=True,
    )


def post(url: str) -> dict[str, object]:
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status
        return dict(json.load(response))


def wait_for(url: str, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited early with status {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not answer in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--requests", type=int, default=2000, help="create requests in all")
    args = parser.parse_args()

    database = f"flakeid_gunicorn_{os.getpid()}"
    env = {
        **os.environ,
        "EXAMPLE_DATABASE": "postgresql",
        "EXAMPLE_DATABASE_NAME": database,
        "FLAKEID_MACHINE_ID": "lease",
        "PYTHONPATH": str(EXAMPLE),
        "DJANGO_SETTINGS_MODULE": "example.settings",
    }
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        subprocess.run(
            [sys.executable, str(EXAMPLE / "manage.py"), "migrate", "--verbosity", "0"],
            check=True,
            env=env,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=EXAMPLE,
        )
        try:
            endpoint = f"{base}/api/orders/"
            wait_for(endpoint, server)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                replies = list(
                    pool.map(lambda _: post(f"{base}/api/orders/"), range(args.requests))
                )
            elapsed = time.perf_counter() - started
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)

        ids = [int(str(reply["id"])) for reply in replies]
        machines = Counter(int(str(reply["machine_id"])) for reply in replies)
        with psycopg.connect(
            host=os.environ.get("PGHOST", "127.0.0.1"),
            port=int(os.environ.get("PGPORT", "5432")),
            user=os.environ.get("PGUSER", "postgres"),
            dbname=database,
        ) as conn:
            stored = conn.execute("SELECT count(*), count(DISTINCT id) FROM shop_order").fetchone()
            held = conn.execute(
                "SELECT count(*) FROM django_flakeid_nodelease WHERE holder <> ''"
            ).fetchone()
        print(
            f"{len(replies)} requests from {args.clients} clients to {args.workers} workers in "
            f"{elapsed:.1f} s ({len(replies) / elapsed:.0f}/s); distinct IDs: {len(set(ids))}; "
            f"rows: {stored}; machine IDs used: {dict(sorted(machines.items()))}; "
            f"leases still held after shutdown: {held[0] if held else '?'}"
        )
        failures = []
        if len(set(ids)) != args.requests:
            failures.append("duplicate IDs")
        if stored != (args.requests, args.requests):
            failures.append("rows missing or repeated")
        if len(machines) < 2:
            failures.append("only one machine ID in use")
        if not held or held[0] != 0:
            failures.append("leases not released on shutdown")
        if failures:
            print("FAILED: " + ", ".join(failures))
            return 1
        print("ok")
        return 0
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
