"""The two floors of the package, read from its source: imports point down and never in a circle.

The core floor imports no Django, so ``import django_flakeid`` works in a plain script; the
Django layer sits on top of it. README's "Module map" names every module's floor, and the list
of the core here is the one it shows.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest

import django_flakeid

ROOT = Path(__file__).resolve().parent.parent
# The code under test: the checkout's package, or the installed wheel when tox runs the suite
# from a copy of the checkout without it.
PACKAGE = Path(django_flakeid.__file__).resolve().parent

CORE_NAMES = (
    "layout",
    "intervals",
    "partition_plan",
    "presets",
    "generator",
    "factory",
    "hostclaim",
    "claimsocket",
    "lockfile",
    "lockdir",
    "marks",
    "timefmt",
    "environ",
    "errors",
    "ints",
)
# A name joins the checks when its module is written, so the list may run ahead of the code.
CORE = sorted(name for name in CORE_NAMES if (PACKAGE / f"{name}.py").is_file())


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every module a file imports, at any depth, except for type checkers only."""

    def __init__(self, package: str, modules: set[str]) -> None:
        self.package = package
        self.modules = modules
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        # Whatever runs only under a type checker never runs; its else branch does.
        if _is_type_checking(node.test):
            body: list[ast.stmt] = node.orelse
        elif (
            isinstance(node.test, ast.UnaryOp)
            and isinstance(node.test.op, ast.Not)
            and _is_type_checking(node.test.operand)
        ):
            body = node.body
        else:
            body = [*node.body, *node.orelse]
        for statement in body:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        # "from . import conf" takes the module conf, not a name the package's __init__ defines;
        # the package itself is always imported first, which is no edge of the graph.
        submodules = {f"{source}.{alias.name}" for alias in node.names} & self.modules
        self.found.update(submodules)
        if node.module or len(submodules) < len(node.names):
            self.found.add(source)


def imports_in(source: str, package: str, modules: set[str]) -> set[str]:
    """The modules a file imports; relative imports count from ``package``."""
    visitor = _Imports(package, modules)
    visitor.visit(ast.parse(source))
    return visitor.found


@cache
def imports_of(name: str) -> frozenset[str]:
    path = package_modules()[name]
    # A package's own __init__ is the package its relative imports start from.
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return frozenset(imports_in(path.read_text(encoding="utf-8"), package, set(package_modules())))


def internal_imports(name: str) -> list[str]:
    modules = package_modules()
    return sorted(imported for imported in imports_of(name) if imported in modules)


def is_django(name: str) -> bool:
    return name == "django" or name.startswith("django.")


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]``, or None when the graph has none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in graph[node]:
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle is not None:
                return cycle
    return None


def django_import_chain(name: str) -> list[str] | None:
    """How ``name`` reaches Django through the package's modules, or None when it does not."""
    seen = {name}
    chains = [[name]]
    while chains:
        chain = chains.pop(0)
        imported = imports_of(chain[-1])
        django = sorted(module for module in imported if is_django(module))
        if django:
            return [*chain, django[0]]
        for target in internal_imports(chain[-1]):
            if target not in seen:
                seen.add(target)
                chains.append([*chain, target])
    return None


def plain_env(tmp_path: Path) -> dict[str, str]:
    """This environment without a Django project or FLAKEID_* variables, claiming in tmp_path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "DJANGO_SETTINGS_MODULE" and not key.startswith("FLAKEID_")
    }
    env["FLAKEID_LOCK_DIR"] = str(tmp_path)
    return env


def run_without_django(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # None in sys.modules makes every "import django..." fail, even with Django installed.
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['django'] = None\n" + script],
        cwd=ROOT,
        env=plain_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_graph_sees_every_kind_of_import() -> None:
    source = textwrap.dedent(
        """
        from typing import TYPE_CHECKING
        from . import sibling
        from ..up import name

        if TYPE_CHECKING:
            from .for_the_type_checker import Type
        else:
            import at_run_time

        def later():
            from .inside import helper
        """
    )
    from_init = imports_in("from . import sibling, NAME", "pkg.sub", {"pkg.sub.sibling"})

    found = imports_in(source, "pkg.sub", {"pkg.sub.sibling"})

    assert found == {
        "typing",
        "pkg.sub.sibling",
        "pkg.up",
        "at_run_time",
        "pkg.sub.inside",
    }
    assert from_init == {"pkg.sub", "pkg.sub.sibling"}


def test_no_import_cycle() -> None:
    graph = {name: internal_imports(name) for name in package_modules()}

    cycle = find_cycle(graph)

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_names_the_modules_in_order() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


@pytest.mark.parametrize("name", CORE)
def test_core_module_reaches_no_django_in_its_source(name: str) -> None:
    chain = django_import_chain(f"django_flakeid.{name}")

    assert chain is None, "the core imports Django: " + " -> ".join(chain or [])


@pytest.mark.parametrize("name", CORE)
def test_core_module_imports_without_django(name: str, tmp_path: Path) -> None:
    completed = run_without_django(f"import django_flakeid.{name}", tmp_path)

    assert completed.returncode == 0, completed.stderr


def test_the_package_makes_ids_without_django(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import django_flakeid
        print(django_flakeid.next_id())
        """
    )

    completed = run_without_django(script, tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert int(completed.stdout) > 0


def readme_floors() -> dict[str, list[str]]:
    """The modules README's "Module map" lists under each floor, in its order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^### Module map\n(.*?)(?=^#|\Z)", readme, re.MULTILINE | re.DOTALL)
    assert found is not None, 'README.md has no "### Module map"'
    floors: dict[str, list[str]] = {"core": [], "django": []}
    floor: str | None = None
    for line in found[1].splitlines():
        if line.startswith("**The core**"):
            floor = "core"
        elif line.startswith("**The Django layer**"):
            floor = "django"
        elif entry := re.match(r"- `([^`]+)`", line):
            assert floor is not None, f"{line!r} comes before either floor"
            floors[floor].append(entry[1])
    return floors


def listed_name(path: Path) -> str:
    """How the module map names a module: its path in the package, migrations as one folder."""
    relative = path.relative_to(PACKAGE)
    return "migrations/" if relative.parts[0] == "migrations" else relative.as_posix()


def test_module_map_lists_every_module_on_one_floor() -> None:
    floors = readme_floors()
    listed = floors["core"] + floors["django"]
    modules = {listed_name(path) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}

    assert sorted(name for name in set(listed) if listed.count(name) > 1) == []
    assert sorted(modules - set(listed)) == [], "modules missing from the module map"
    assert sorted(set(listed) - modules) == [], "the module map lists what is not there"


def test_module_map_core_is_the_checked_core() -> None:
    core = readme_floors()["core"]

    assert sorted(core) == [f"{name}.py" for name in CORE]
