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
from collections.abc import Callable, Iterator, Sequence
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
    "SnowflakeAutoField": "#e6ab02",
    "Snowflake bigint": "#a6761d",
    "BigAutoField": "#1b9e77",
    "UUIDv4": "#7570b3",
    "UUIDv7": "#66a61e",
}
#: The tables of database.py, in the order they are drawn: (scheme, created_at) and a label.
SERIES = {
    ("Snowflake", "none"): "SnowflakeField (the baseline)",
    ("SnowflakeAutoField", "none"): "SnowflakeAutoField",
    ("Snowflake bigint", "none"): "SnowflakeField declared bigint (SQLite: not the rowid)",
    ("BigAutoField", "indexed"): "BigAutoField + indexed created_at",
    ("UUIDv4", "indexed"): "UUIDv4 + indexed created_at",
    ("UUIDv7", "indexed"): "UUIDv7 + indexed created_at",
    ("BigAutoField", "none"): "BigAutoField alone (pale)",
    ("UUIDv4", "none"): "UUIDv4 alone (pale)",
    ("UUIDv7", "none"): "UUIDv7 alone (pale)",
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


def series_of(row: dict[str, str]) -> tuple[str, str]:
    scheme = row["scheme"]
    # Results written before the bare tables existed have no created_at column.
    created_at = row.get("created_at") or ("none" if scheme.startswith("Snowflake") else "indexed")
    return scheme, created_at


def bar_style(series: tuple[str, str]) -> dict[str, object]:
    scheme, created_at = series
    # A key without the created_at it is used with is drawn pale beside its usual self.
    pale = created_at == "none" and not scheme.startswith("Snowflake")
    return {"color": SCHEME_COLORS.get(scheme, PEER_COLOR), "alpha": 0.45 if pale else 1.0}


def placed(by_db: dict[str, Table]) -> Iterator[tuple[float, float, dict[str, str]]]:
    """(x, width, row) of every bar: groups by database, in SERIES order inside a group."""
    groups = [
        sorted(
            (r for r in rows if series_of(r) in SERIES),
            key=lambda r: list(SERIES).index(series_of(r)),
        )
        for rows in by_db.values()
    ]
    width = 0.85 / max(len(group) for group in groups)
    for g, group in enumerate(groups):
        for s, row in enumerate(group):
            yield g + (s - (len(group) - 1) / 2) * width, width, row


def grouped_bars(
    ax: Axes,
    by_db: dict[str, Table],
    value: Callable[[dict[str, str]], float | None],
    label: Callable[[dict[str, str], float], str],
) -> None:
    # A table that cannot answer leaves no gap.
    answered = {db: [r for r in rows if value(r) is not None] for db, rows in by_db.items()}
    for x, width, row in placed(answered):
        height = value(row)
        assert height is not None
        ax.bar(x, height, width, **bar_style(series_of(row)))  # type: ignore[arg-type]
        ax.text(x, height, label(row, height), ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(by_db)), [group_label(rows) for rows in by_db.values()])
    ax.margins(y=0.2)


def group_label(rows: Table) -> str:
    first = rows[0]
    return f"{first['db_version']}\n{int(first['rows']):,} rows"


def plot_sizes(ax: Axes, by_db: dict[str, Table]) -> None:
    parts = (("table_bytes", ""), ("pk_index_bytes", "//"), ("time_index_bytes", ".."))
    for x, width, row in placed(by_db):
        if not row["total_bytes"]:
            continue
        bottom = 0.0
        for column, hatch in parts:
            height = int(row[column]) / int(row["rows"])
            ax.bar(
                x,
                height,
                width,
                bottom=bottom,
                hatch=hatch,
                edgecolor="white",
                linewidth=0.5,
                **bar_style(series_of(row)),  # type: ignore[arg-type]
            )
            bottom += height
        ax.text(x, bottom, f"{bottom:.0f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(by_db)), [group_label(rows) for rows in by_db.values()])
    # Room above the bars for the legend of the hatches.
    ax.margins(y=0.5)
    ax.legend(
        handles=[
            Patch(facecolor="#bbbbbb", label="table (rows; the key too where it is clustered)"),
            Patch(facecolor="#bbbbbb", hatch="//", label="primary key index"),
            Patch(facecolor="#bbbbbb", hatch="..", label="created_at index"),
        ],
        fontsize=7,
        loc="upper left",
    )


def optional(value: str | None) -> float | None:
    return float(value) if value else None


def plot_database(by_db: dict[str, Table], path: Path) -> None:
    figure, axes = plt.subplots(3, 2, figsize=(14, 13))
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
        lambda r: optional(r["query_ms"]),
        lambda r, v: f"{v:.1f}",
    )
    axes[1][1].set_title(
        "rows from the last hour, 1% of the table (lower is better)\n"
        "Snowflake: id__generated_at__gte; the others: indexed created_at",
        fontsize=10,
    )
    axes[1][1].set_ylabel("milliseconds")
    grouped_bars(
        axes[2][0],
        by_db,
        lambda r: optional(r.get("lookup_us")),
        lambda r, v: f"{v:.0f}",
    )
    axes[2][0].set_title(
        "one row by its key, SQL through Django's cursor (lower is better)", fontsize=10
    )
    axes[2][0].set_ylabel("microseconds")
    present = {series_of(r) for rows in by_db.values() for r in rows}
    legend = axes[2][1]
    legend.axis("off")
    legend.legend(
        handles=[
            Patch(**bar_style(series), label=label)  # type: ignore[arg-type]
            for series, label in SERIES.items()
            if series in present
        ],
        loc="center",
        fontsize=10,
        frameon=False,
        title="primary key (pale: the same key with no created_at, its own cost)",
        title_fontsize=10,
    )
    figure.suptitle("Primary key schemes in Django, same machine, same run", fontsize=13)
    every = [r for rows in by_db.values() for r in rows]
    text = caption(
        every,
        f"python benchmarks/database.py --db DB; medians of {every[0]['rounds']} interleaved "
        "rounds; save() runs in one transaction per round; queries fetch model instances",
    )
    finish(figure, text, path, top=0.97)


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


MARKDOWN_NAMES = {"Snowflake": "**Snowflake**", "Snowflake bigint": "Snowflake, `bigint`"}


def with_ratio(value: str | None, ratio: str | None, spec: str) -> str:
    if not value or not ratio:
        return "n/a"
    return f"{float(value):{spec}} ({float(ratio):.2f})"


def database_markdown(rows: Table) -> str:
    lines = []
    for r in sorted(rows, key=lambda r: list(SERIES).index(series_of(r))):
        pk = megabytes(r["pk_index_bytes"])
        if r["pk_storage"] != "a separate index":
            pk = r["pk_storage"]
        ratio = f"{float(r['size_ratio']):.2f}" if r["size_ratio"] else "n/a"
        scheme, created_at = series_of(r)
        lines.append(
            [
                MARKDOWN_NAMES.get(scheme, scheme),
                created_at,
                f"{int(r['bulk_rows_per_s']):,} ({float(r['bulk_ratio']):.2f})",
                f"{int(r['save_rows_per_s']):,} ({float(r['save_ratio']):.2f})",
                pk,
                megabytes(r["time_index_bytes"]) if r["time_index_bytes"] != "0" else "none",
                f"{megabytes(r['total_bytes'])} ({ratio})",
                with_ratio(r["query_ms"], r["query_ratio"], ".1f"),
                with_ratio(r.get("lookup_us"), r.get("lookup_ratio"), ".1f"),
            ]
        )
    return markdown_table(
        [
            "key",
            "created_at",
            "bulk_create rows/s",
            "save() rows/s",
            "PK index MB",
            "created_at index MB",
            "total MB",
            "last hour, ms",
            "by key, µs",
        ],
        lines,
        {2, 3, 4, 5, 6, 7, 8},
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
                f"{int(first['saves']):,} by save(), last hour {int(first['query_rows']):,} rows, "
                f"{int(first.get('lookups') or 0):,} rows by key; "
                f"{first['machine']}, {first['date']} ({first['mode']} run); in brackets, "
                "how many times better the SnowflakeField key does (n/a: a table without "
                "created_at cannot ask for the last hour):\n"
            )
            print(database_markdown(rows), end="\n\n")
    if not found:
        sys.exit(f"no results in {args.results}: run the benchmarks first")


if __name__ == "__main__":
    main()
