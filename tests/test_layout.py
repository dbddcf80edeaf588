"""The package's layout, checked from its source: who may import whom, and where.

The wings depend in one direction::

    cli -> web -> service -> importing -> {storage, records} -> base

``base`` is ``config``, ``errors``, ``injection``, the package's
``__init__`` and ``__main__``. ``export`` may import storage and records;
``testing`` anything but the CLI and the web console; the web console
the library (never the CLI); the CLI anything. Storage and records
never import each other, nothing outside the CLI imports the web console,
and nothing outside the CLI imports the CLI, except
``__main__``, which *is* the command (``python -m datacenter``). The
package's ``__init__`` only re-exports the storage's facade, so importing
from the package itself counts as importing the storage.

Imports are made at module level (under ``if TYPE_CHECKING:`` too, where
the direction still holds), never inside a function; the module-level
imports form no cycle; a module longer than 400 lines says why in its
docstring ("Longer than 400 lines because ..."). The test modules import
shared helpers from ``tests/helpers.py``, never from one another or from
``conftest.py``.

Each rule fails with a message naming the module(s) and the rule, and the
checker is shown to fail on a synthetic tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
PACKAGE = "datacenter"
MAX_LINES = 400
#: What a long module's docstring must say.
WHY_LONG = f"Longer than {MAX_LINES} lines because"

WINGS = ("storage", "records", "importing", "service", "web", "cli", "testing")
BASE = ("config", "errors", "injection", "__init__", "__main__")
#: The modules of records out (``export``: its columnar CSV writer is a module of its own).
EXPORT = ("export", "columnar_export", "formulas")
EVERYTHING = frozenset({*WINGS, "export", "base"})
#: The wings each wing may import (itself always included).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "storage": frozenset({"storage", "base"}),
    "records": frozenset({"records", "base"}),
    "importing": frozenset({"importing", "storage", "records", "base"}),
    "service": frozenset({"service", "importing", "storage", "records", "base"}),
    "export": frozenset({"export", "storage", "records", "base"}),
    "web": frozenset({"web", "service", "importing", "storage", "records", "export", "base"}),
    "testing": EVERYTHING - {"cli", "web"},
    "cli": EVERYTHING,
}
#: ``python -m datacenter`` is the command: the one module outside cli that imports it.
ENTRY_POINT = f"{PACKAGE}.__main__"
#: Modules of the base with a rule of their own.
OWN_RULES: dict[str, tuple[frozenset[str], str]] = {
    PACKAGE: (frozenset({"storage"}), "the package's __init__ only re-exports from storage"),
    ENTRY_POINT: (frozenset({"cli"}), "__main__ only runs the command line"),
}
DIRECTION = "cli -> web -> service -> importing -> {storage, records} -> base"


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module's source says it."""

    target: str  # the module imported; in the package, the most precise module named
    line: int
    in_function: bool
    type_checking: bool  # under a module-level `if TYPE_CHECKING:`

    @property
    def internal(self) -> bool:
        return self.target == PACKAGE or self.target.startswith(PACKAGE + ".")


# -- reading the package ----------------------------------------------------------------------


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under *root*, by dotted name."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def wing(module: str) -> str:
    """The wing a module of the package belongs to."""
    parts = module.split(".")[1:]
    if not parts or parts[0] in BASE:
        return "base"
    if parts[0] in WINGS:
        return parts[0]
    if parts[0] in EXPORT:
        return "export"
    raise AssertionError(f"{module}: belongs to no wing; add it to tests/test_layout.py")


def target_wing(module: str) -> str:
    """The wing an import of *module* reaches: the package itself re-exports the storage."""
    return "storage" if module == PACKAGE else wing(module)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every import *module* (at *path*) makes, wherever it is made."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[:len(base) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, in_function, type_checking)
            return
        if isinstance(node, ast.ImportFrom):
            source = resolve(node)
            for alias in node.names:
                child = f"{source}.{alias.name}"
                yield Import(child if child in known else source, node.lineno,
                             in_function, type_checking)
            return
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                          | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            checking = type_checking or (
                isinstance(node, ast.If) and not in_function and _is_type_checking(node.test)
                and child in node.body)
            yield from visit(child, inner, checking)

    yield from visit(tree, False, False)


def _all_imports(root: Path) -> dict[str, list[Import]]:
    found = modules(root)
    known = set(found)
    return {name: list(imports(name, path, known)) for name, path in found.items()}


# -- the rules ---------------------------------------------------------------------------------


def direction_violations(root: Path) -> list[str]:
    """Imports against the direction of the wings, or of the CLI, or inside a function."""
    problems = []
    for module, found in _all_imports(root).items():
        source = wing(module)
        allowed, rule = OWN_RULES.get(module, (None, ""))
        if allowed is None:
            allowed = MAY_IMPORT[source]
            rule = f"{source} may import only {', '.join(sorted(allowed))} ({DIRECTION})"
        for imp in found:
            where = f"{module} (line {imp.line}) imports {imp.target}"
            if imp.in_function:
                problems.append(f"{where} inside a function: imports are made at module level")
            if not imp.internal:
                continue
            reached = target_wing(imp.target)
            if reached == "cli" and source != "cli" and module != ENTRY_POINT:
                problems.append(f"{where}: nothing outside cli imports cli")
            elif reached == "web" and source not in ("web", "cli"):
                problems.append(f"{where}: nothing outside cli imports the web console")
            elif reached not in allowed:
                kind = " under TYPE_CHECKING" if imp.type_checking else ""
                problems.append(f"{where}{kind}: {rule}")
    return problems


def module_graph(root: Path) -> dict[str, list[str]]:
    """Who imports whom when the modules load (TYPE_CHECKING and functions left out)."""
    return {module: sorted({imp.target for imp in found if imp.internal and not imp.in_function
                            and not imp.type_checking and imp.target != module})
            for module, found in _all_imports(root).items()}


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of several modules (Tarjan): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, []):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _way_round(graph: dict[str, list[str]], members: list[str]) -> str:
    """One way round a cycle among *members*, for the message: a -> b -> a."""
    inside = set(members)
    path = [members[0]]
    while True:
        step = next(n for n in graph[path[-1]] if n in inside)
        if step in path:
            return " -> ".join([*path[path.index(step):], step])
        path.append(step)


def cycle_violations(root: Path) -> list[str]:
    graph = module_graph(root)
    return [f"import cycle: {_way_round(graph, members)}" for members in cycles(graph)]


def size_violations(root: Path) -> list[str]:
    problems = []
    for module, path in modules(root).items():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_LINES and WHY_LONG not in (ast.get_docstring(ast.parse(text)) or ""):
            problems.append(f"{module} ({path.relative_to(root)}): {lines} lines, and its "
                            f"docstring does not say why ({WHY_LONG!r} ...)")
    return problems


def cross_test_imports(root: Path) -> list[str]:
    """Test modules that import another test module or conftest (helpers.py is for that)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and
                     not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top.startswith("test_") or top == "conftest":
                    problems.append(f"{path.relative_to(root)} (line {node.lineno}) imports "
                                    f"{name}: test modules import shared helpers from "
                                    "helpers.py, never another test module or conftest")
    return problems


# -- the package as it is --------------------------------------------------------------------


def test_every_module_belongs_to_a_wing() -> None:
    for module in modules(ROOT):
        wing(module)


def test_imports_follow_the_direction_of_the_wings() -> None:
    problems = direction_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_module_imports_form_no_cycle() -> None:
    problems = cycle_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_long_modules_say_why() -> None:
    problems = size_violations(ROOT)
    assert not problems, "\n".join(problems)


def test_test_modules_share_helpers_only_through_helpers_py() -> None:
    problems = cross_test_imports(TESTS)
    assert not problems, "\n".join(problems)


# -- the checker can fail ------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checker_finds_a_storage_module_importing_importing(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "datacenter/__init__.py": "from datacenter.storage.center import DataCenter\n",
        "datacenter/storage/__init__.py": "",
        "datacenter/storage/center.py": "from datacenter.importing import importer\n",
        "datacenter/importing/__init__.py": "",
        "datacenter/importing/importer.py": "from datacenter.storage import center\n",
    })
    assert direction_violations(root) == [
        "datacenter.storage.center (line 1) imports datacenter.importing.importer: storage may "
        f"import only base, storage ({DIRECTION})"]
    assert cycle_violations(root) == [
        "import cycle: datacenter.importing.importer -> datacenter.storage.center -> "
        "datacenter.importing.importer"]


def test_the_checker_finds_every_kind_of_violation(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "datacenter/__init__.py": "from datacenter import config\n",
        "datacenter/__main__.py": "from datacenter.cli import main\n",
        "datacenter/config.py": "",
        "datacenter/cli/__init__.py": "def main() -> None: ...\n",
        "datacenter/records/__init__.py": "from datacenter.storage import fs\n",
        "datacenter/storage/__init__.py": "",
        "datacenter/storage/fs.py": ("from typing import TYPE_CHECKING\n"
                                     "if TYPE_CHECKING:\n    from datacenter import records\n"
                                     "def f() -> None:\n    from . import layout\n"
                                     "    import json\n"),
        "datacenter/storage/layout.py": "from .fs import f\n",
        "datacenter/service/__init__.py": "import datacenter.cli\n",
        "datacenter/export.py": "from datacenter.importing import x\n",
        "datacenter/importing/__init__.py": "x = 1\n",
        "datacenter/records/long.py": '"""Short."""\n' + "x = 1\n" * 400,
        "datacenter/records/why.py": f'"""{WHY_LONG} it is."""\n' + "x = 1\n" * 400,
    })
    problems = direction_violations(root)
    assert problems == [
        "datacenter (line 1) imports datacenter.config: the package's __init__ only "
        "re-exports from storage",
        "datacenter.export (line 1) imports datacenter.importing: export may import only "
        f"base, export, records, storage ({DIRECTION})",
        "datacenter.records (line 1) imports datacenter.storage.fs: records may import only "
        f"base, records ({DIRECTION})",
        "datacenter.service (line 1) imports datacenter.cli: nothing outside cli imports cli",
        "datacenter.storage.fs (line 3) imports datacenter.records under TYPE_CHECKING: "
        f"storage may import only base, storage ({DIRECTION})",
        "datacenter.storage.fs (line 5) imports datacenter.storage.layout inside a function: "
        "imports are made at module level",
        "datacenter.storage.fs (line 6) imports json inside a function: imports are made at "
        "module level",
    ]
    # Neither the TYPE_CHECKING import nor the function's import makes a cycle.
    assert cycle_violations(root) == []
    assert size_violations(root) == [
        "datacenter.records.long (datacenter/records/long.py): 401 lines, and its docstring "
        f"does not say why ({WHY_LONG!r} ...)"]
    (root / "datacenter/storage/fs.py").write_text("from datacenter.storage.layout import f\n"
                                                   "def f() -> None: ...\n")
    assert cycle_violations(root) == [
        "import cycle: datacenter.storage.fs -> datacenter.storage.layout -> "
        "datacenter.storage.fs"]


def test_the_checker_keeps_the_library_from_the_web_console(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "datacenter/__init__.py": "",
        "datacenter/cli/__init__.py": "from datacenter.web import app\n",
        "datacenter/web/__init__.py": "",
        "datacenter/web/app.py": "from datacenter.service import loop\n",
        "datacenter/web/views.py": "from datacenter.cli import main\n",
        "datacenter/service/__init__.py": "",
        "datacenter/service/loop.py": "from datacenter.web import app\n",
        "datacenter/testing/__init__.py": "from datacenter.web import app\n",
    })
    assert direction_violations(root) == [
        "datacenter.service.loop (line 1) imports datacenter.web.app: nothing outside cli "
        "imports the web console",
        "datacenter.testing (line 1) imports datacenter.web.app: nothing outside cli imports "
        "the web console",
        "datacenter.web.views (line 1) imports datacenter.cli: nothing outside cli imports cli",
    ]


def test_the_checker_finds_a_test_module_importing_another(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "helpers.py": "def write() -> None: ...\n",
        "test_a.py": "from helpers import write\nfrom test_b import make\n",
        "test_b.py": "import conftest\ndef make() -> None: ...\n",
    })
    assert cross_test_imports(root) == [
        "test_a.py (line 2) imports test_b: test modules import shared helpers from "
        "helpers.py, never another test module or conftest",
        "test_b.py (line 1) imports conftest: test modules import shared helpers from "
        "helpers.py, never another test module or conftest",
    ]
