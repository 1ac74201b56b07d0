"""Charts and Markdown tables from the benchmark results.

Usage: python benchmarks/plot.py [--results DIR] [--out DIR]

Reads ``generator.csv`` and ``database-{sqlite,postgresql,mariadb}.csv`` from
``benchmarks/results/`` (written by ``generator.py`` and ``database.py``), falling back to the
``-quick`` files of a smoke run, and writes ``docs/generator.png`` and ``docs/database.png``
(needs matplotlib: ``pip install -e ".[bench]"``). It also prints the results as Markdown
tables, for the README.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import RESULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
DATABASES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
OURS_COLOR = "#d95f02"
PEER_COLOR = "#7f8c8d"
SCHEME_COLORS = {
    "Snowflake": "#d95f02",
    "BigAutoField": "#1b9e77",
    "UUIDv4": "#7570b3",
    "UUIDv7": "#66a61e",
}
Table = list[dict[str, str]]


def read(results: Path, name: str) -> tuple[Table, Path] | None:
    """The rows of ``name.csv``, else of ``name-quick.csv``, with the file they came from."""
    for path in (results / f"{name}.csv", results / f"{name}-quick.csv"):
        if path.exists():
            with path.open(newline="") as handle:
                return list(csv.DictReader(handle)), path
    return None


def caption(rows: Table, what: str) -> str:
    first = rows[0]
    text = f"{what}. Measured {first['date']} on {first['machine']}."
    if first["mode"] == "quick":
        text += " QUICK SMOKE RUN: not for publishing."
    return text


def finish(figure: Figure, text: str, path: Path, top: float = 1.0) -> None:
    figure.text(0.01, 0.005, text, fontsize=8, color="#444444", ha="left", va="bottom", wrap=True)
    figure.tight_layout(rect=(0, 0.03, 1, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


def millions(value: float) -> str:
    return f"{value / 1e6:.2f} M" if value >= 995_000 else f"{value / 1e3:,.0f} k"


def plot_generator(rows: Table, path: Path) -> None:
    cases = list(dict.fromkeys(r["case"] for r in rows))
    figure, axes = plt.subplots(2, 2, figsize=(14, 9))
    for ax, case in zip(axes.flat, cases, strict=False):
        case_rows = [r for r in rows if r["case"] == case]
        capacity = [r for r in case_rows if r["contender"].endswith("capacity")]
        bars = [r for r in case_rows if r not in capacity]
        names = [r["contender"] for r in bars]
        rates = [float(r["ids_per_s"]) for r in bars]
        colors = [OURS_COLOR if i == 0 else PEER_COLOR for i in range(len(bars))]
        positions = range(len(bars))
        ax.barh(positions, rates, color=colors)
        ax.set_yticks(positions, names)
        ax.invert_yaxis()
        top = max(rates + [float(r["ids_per_s"]) for r in capacity])
        for i, r in enumerate(bars):
            label = millions(rates[i])
            if i:
                label += f"  ({float(r['ratio']):.2f}x)"
            ax.text(rates[i] + top * 0.01, i, label, va="center", fontsize=8)
        for r in capacity:
            ax.axvline(float(r["ids_per_s"]), color="black", linestyle="--", linewidth=1)
            ax.text(
                float(r["ids_per_s"]),
                len(bars) - 0.5,
                " twitter layout's capacity",
                fontsize=8,
                va="bottom",
            )
        ax.set_xlim(0, top * 1.3)
        ax.set_title(f"{case} ({int(bars[0]['count']):,} IDs per run)", fontsize=10)
        ax.set_xlabel(
            "IDs per second (higher is better); in brackets, django-flakeid's rate ÷ this one",
            fontsize=9,
        )
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1e6:g} M" if value else "0")
    for ax in list(axes.flat)[len(cases) :]:
        ax.set_visible(False)
    figure.suptitle("ID generation throughput, one process, same run", fontsize=13)
    text = caption(
        rows,
        f"python benchmarks/generator.py; median of {rows[0]['rounds']} interleaved rounds; "
        "bulk without a bulk API is a list comprehension",
    )
    finish(figure, text, path)


def grouped_bars(
    ax: Axes,
    by_db: dict[str, Table],
    value: Callable[[dict[str, str]], float],
    label: Callable[[dict[str, str], float], str],
) -> None:
    schemes = list(SCHEME_COLORS)
    width = 0.8 / len(schemes)
    for g, rows in enumerate(by_db.values()):
        for s, scheme in enumerate(schemes):
            row = next((r for r in rows if r["scheme"] == scheme), None)
            if row is None:
                continue
            x = g + (s - (len(schemes) - 1) / 2) * width
            height = value(row)
            ax.bar(x, height, width, color=SCHEME_COLORS[scheme])
            ax.text(x, height, label(row, height), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(by_db)), [group_label(rows) for rows in by_db.values()])
    ax.margins(y=0.15)


def group_label(rows: Table) -> str:
    first = rows[0]
    return f"{first['db_version']}\n{int(first['rows']):,} rows"


def plot_sizes(ax: Axes, by_db: dict[str, Table]) -> None:
    schemes = list(SCHEME_COLORS)
    width = 0.8 / len(schemes)
    parts = (("table_bytes", ""), ("pk_index_bytes", "//"), ("time_index_bytes", ".."))
    for g, rows in enumerate(by_db.values()):
        for s, scheme in enumerate(schemes):
            row = next((r for r in rows if r["scheme"] == scheme), None)
            if row is None or not row["total_bytes"]:
                continue
            x = g + (s - (len(schemes) - 1) / 2) * width
            bottom = 0.0
            for column, hatch in parts:
                height = int(row[column]) / int(row["rows"])
                ax.bar(
                    x,
                    height,
                    width,
                    bottom=bottom,
                    color=SCHEME_COLORS[scheme],
                    hatch=hatch,
                    edgecolor="white",
                    linewidth=0.5,
                )
                bottom += height
            ax.text(x, bottom, f"{bottom:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(by_db)), [group_label(rows) for rows in by_db.values()])
    ax.margins(y=0.15)
    ax.legend(
        handles=[
            Patch(facecolor="#bbbbbb", label="table (rows; the key too where it is clustered)"),
            Patch(facecolor="#bbbbbb", hatch="//", label="primary key index"),
            Patch(facecolor="#bbbbbb", hatch="..", label="created_at index"),
        ],
        fontsize=7,
        loc="upper left",
    )


def plot_database(by_db: dict[str, Table], path: Path) -> None:
    figure, axes = plt.subplots(2, 2, figsize=(14, 9))
    grouped_bars(
        axes[0][0],
        by_db,
        lambda r: float(r["bulk_rows_per_s"]),
        lambda r, v: f"{v / 1000:.0f}k",
    )
    axes[0][0].set_title("bulk_create, batches of 1,000 (higher is better)", fontsize=10)
    axes[0][0].set_ylabel("rows per second")
    grouped_bars(
        axes[0][1],
        by_db,
        lambda r: float(r["save_rows_per_s"]),
        lambda r, v: f"{v / 1000:.1f}k",
    )
    axes[0][1].set_title("save(), one INSERT each (higher is better)", fontsize=10)
    axes[0][1].set_ylabel("rows per second")
    plot_sizes(axes[1][0], by_db)
    axes[1][0].set_title("space on disk (lower is better)", fontsize=10)
    axes[1][0].set_ylabel("bytes per row")
    grouped_bars(
        axes[1][1],
        by_db,
        lambda r: float(r["query_ms"]),
        lambda r, v: f"{v:.1f}",
    )
    axes[1][1].set_title(
        "rows from the last hour, 1% of the table (lower is better)\n"
        "Snowflake: id__generated_at__gte; the others: indexed created_at",
        fontsize=10,
    )
    axes[1][1].set_ylabel("milliseconds")
    figure.legend(
        handles=[
            Patch(facecolor=SCHEME_COLORS[r["scheme"]], label=f"{r['scheme']}: {r['key']}")
            for r in next(iter(by_db.values()))
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.955),
        ncols=len(SCHEME_COLORS),
        fontsize=9,
        frameon=False,
    )
    figure.suptitle("Primary key schemes in Django, same machine, same run", fontsize=13)
    every = [r for rows in by_db.values() for r in rows]
    text = caption(
        every,
        f"python benchmarks/database.py --db DB; medians of {every[0]['rounds']} interleaved "
        "rounds; save() runs in one transaction per round; queries fetch model instances",
    )
    finish(figure, text, path, top=0.93)


def markdown_table(header: Sequence[str], lines: list[list[str]], right: set[int]) -> str:
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def generator_markdown(rows: Table) -> str:
    lines = []
    previous = ""
    for r in rows:
        case = f"`{r['case']}`" if r["case"] != previous else ""
        previous = r["case"]
        ours = r["contender"].startswith("django-flakeid")
        ratio = "" if ours else f"{float(r['ratio']):.2f}"
        if r["target"]:
            ratio += f" (target {float(r['target']):g})"
        name = f"**{r['contender']}**" if ours else r["contender"]
        lines.append([case, name, f"`{r['how']}`", f"{int(r['ids_per_s']):,}", ratio])
    return markdown_table(
        ["case", "contender", "how", "IDs/s", "django-flakeid ÷ this"], lines, {3, 4}
    )


def megabytes(value: str) -> str:
    return f"{int(value) / 1e6:,.1f}" if value else "n/a"


def database_markdown(rows: Table) -> str:
    lines = []
    for r in rows:
        pk = megabytes(r["pk_index_bytes"])
        if r["pk_storage"] != "a separate index":
            pk = r["pk_storage"]
        ratio = f"{float(r['size_ratio']):.2f}" if r["size_ratio"] else "n/a"
        lines.append(
            [
                f"**{r['scheme']}**" if r["scheme"] == "Snowflake" else r["scheme"],
                f"{int(r['bulk_rows_per_s']):,} ({float(r['bulk_ratio']):.2f})",
                f"{int(r['save_rows_per_s']):,} ({float(r['save_ratio']):.2f})",
                pk,
                megabytes(r["time_index_bytes"]) if r["time_index_bytes"] != "0" else "none",
                f"{megabytes(r['total_bytes'])} ({ratio})",
                f"{float(r['query_ms']):.1f} ({float(r['query_ratio']):.2f})",
            ]
        )
    return markdown_table(
        [
            "key",
            "bulk_create rows/s",
            "save() rows/s",
            "PK index MB",
            "created_at index MB",
            "total MB",
            "last hour, ms",
        ],
        lines,
        {1, 2, 3, 4, 5, 6},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where the CSV files are (%(default)s)"
    )
    parser.add_argument("--out", type=Path, default=DOCS, help="where to write the PNGs (docs/)")
    args = parser.parse_args()

    found = False
    generator = read(args.results, "generator")
    if generator is None:
        print("no generator results: run python benchmarks/generator.py", file=sys.stderr)
    else:
        found = True
        rows, source = generator
        print(f"from {source}")
        plot_generator(rows, args.out / "generator.png")
        print(f"\n{rows[0]['machine']}, {rows[0]['date']} ({rows[0]['mode']} run):\n")
        print(generator_markdown(rows), end="\n\n")

    by_db = {}
    for db in DATABASES:
        result = read(args.results, f"database-{db}")
        if result is None:
            print(f"no {db} results: run python benchmarks/database.py --db {db}", file=sys.stderr)
            continue
        rows, source = result
        print(f"from {source}")
        by_db[db] = rows
    if by_db:
        found = True
        plot_database(by_db, args.out / "database.png")
        for rows in by_db.values():
            first = rows[0]
            print(
                f"\n{first['db_version']}: {int(first['rows']):,} rows by bulk_create, "
                f"{int(first['saves']):,} by save(), last hour {int(first['query_rows']):,} rows; "
                f"{first['machine']}, {first['date']} ({first['mode']} run); in brackets, "
                "how many times better the Snowflake key does:\n"
            )
            print(database_markdown(rows), end="\n\n")
    if not found:
        sys.exit(f"no results in {args.results}: run the benchmarks first")


if __name__ == "__main__":
    main()
