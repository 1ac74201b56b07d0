"""Copy the checkout, less the django_flakeid package, to DEST: tox tests the wheel from there."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP_DIRS = ("tests", "example_project", "scripts", "benchmarks")
KEEP_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md")


def main(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite3")
    for name in KEEP_DIRS:
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for name in KEEP_FILES:
        shutil.copy2(ROOT / name, dest / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
