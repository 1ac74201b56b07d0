"""Run the ``flakeid`` 0.1.1 package's own tests and README examples against django_flakeid.

Usage: python scripts/flakeid_compat.py

Downloads the sdist from PyPI into a temporary folder, removes its source so that nothing but
django_flakeid can answer ``import flakeid``, and points that name at django_flakeid with a
one-line module that lives only in the temporary folder (the project ships no ``flakeid``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

SDIST = "flakeid==0.1.1"
# flakeid 0.1.1's own suite sets this private attribute to fake a clock far ahead; django_flakeid
# keeps the same name for the last stamped millisecond, so that test runs too.
ALIAS = "import sys\nimport django_flakeid\nsys.modules[__name__] = django_flakeid\n"
README_PRELUDE = """
import itertools
_calls = itertools.count()
class _Enough(Exception):
    pass
def save_to_db(uid):
    if next(_calls) >= 1000:
        raise _Enough
saved = []
save = saved.append
"""
README_EPILOGUE = """
assert len(saved) == 160_000 and len(set(saved)) == 160_000, "README thread example"
"""


def fetch(workdir: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(workdir),
            SDIST,
        ],
        check=True,
    )
    archive = next(workdir.glob("flakeid-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    root = next(p for p in workdir.iterdir() if p.is_dir() and p.name.startswith("flakeid-"))
    for path in sorted((root / "src").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "src").rmdir()
    return root


def run_readme_examples(readme: Path, env: dict[str, str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    script = README_PRELUDE
    for block in blocks:
        # The stream example loops forever by design; save_to_db ends it after 1000 IDs.
        if "gen.stream()" in block:
            script += f"\ntry:\n{textwrap.indent(block, '    ')}except _Enough:\n    pass\n"
        else:
            script += "\n" + block
    script += README_EPILOGUE
    print(f"running {len(blocks)} README examples")
    subprocess.run([sys.executable, "-c", script], check=True, env=env)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        root = fetch(workdir)
        alias_dir = workdir / "alias"
        alias_dir.mkdir()
        (alias_dir / "flakeid.py").write_text(ALIAS)
        env = {**os.environ, "PYTHONPATH": str(alias_dir)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:django",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "tests/test_flakeid.py",
            ],
            check=True,
            cwd=root,
            env=env,
        )
        subprocess.run([sys.executable, "tests/run_tests.py"], check=True, cwd=root, env=env)
        run_readme_examples(root / "README.md", env)
    print("flakeid 0.1.1 compatibility: suite, unittest runner and README examples pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
