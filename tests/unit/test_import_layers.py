"""Imports only go down, and no cycle hides anywhere (docs: ARCHITECTURE, "Imports only go down").

The import graph of planner/, hwprofiles/, simulate/ and validate/ is read from the source (every
``import`` statement: at module level, inside functions and under ``if TYPE_CHECKING``), so an import
moved into a function to dodge a cycle still counts. Importing ``a.b.c`` also runs ``a`` and ``a.b``
(Python imports the parent packages first), so those edges count as well. Checked:

- no cycle between modules;
- a module imports only from its own part or from a lower layer (``LAYERS``, bottom first); the parts of
  one layer do not import each other;
- an import inside a function is of the standard library, of an optional heavy dependency
  (``OPTIONAL_HEAVY``), made by the CLI (start-up: a command imports what it runs only when it runs,
  planner/cli/lazy.py), or listed in ``FUNCTION_LEVEL_OK`` with the reason;
- an import by name (``importlib.import_module``, ``__import__``), which no graph can follow, only where
  ``DYNAMIC_IMPORTS`` says why.

The checker checks itself on injected sources (an upward import, a cycle hidden in a function). The same
layers as an import-linter ``layers`` contract give the same verdict (checked by hand when this was
written; import-linter is not a dependency).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("planner", "hwprofiles", "simulate", "validate")

#: Layers, bottom first; each a tuple of parts (a part: ``planner.X`` or a top-level package).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("errors", ("planner", "planner.errors")),
    ("utilities", ("planner.units", "planner.io", "planner.gc_pause")),
    ("output paths", ("planner.outputs",)),
    ("specs", ("planner.specs",)),
    ("data", ("hwprofiles", "planner.evidence", "planner.trace")),
    ("topology", ("planner.topology",)),
    ("work", ("planner.work",)),
    ("pricing", ("planner.pricing",)),
    ("cost", ("planner.cost",)),
    ("scenario and framework rules", ("planner.scenario", "planner.frameworks")),
    ("simulate", ("simulate",)),
    ("search", ("planner.search",)),
    ("what-if, exports, run plans, benchmarks, validation", (
        "planner.whatif", "planner.exports", "planner.run", "planner.bench", "validate")),
    ("reports", ("planner.report",)),
    ("cli", ("planner.cli",)),
    ("entry point", ("planner.__main__",)),
)

#: Third-party packages a library module may import inside a function: optional extras a user may not
#: have installed (validate: torch; plot: matplotlib; trace: HolisticTraceAnalysis and its pandas) and
#: the explorer's textual.
OPTIONAL_HEAVY = ("torch", "matplotlib", "textual", "hta", "pandas")

#: Imports inside a function outside the CLI, by (importer, imported) module prefix, with the reason.
FUNCTION_LEVEL_OK: dict[tuple[str, str], str] = {
    ("planner.topology", "numpy"): "`paraplan hw list` / `hw show` draw the node graph without numpy",
    ("planner.report", "simulate.plot"): "simulate.plot imports matplotlib (the plot extra) at module level",
    ("planner.report.frontier_md", "planner.report.plots"): "plots imports matplotlib (the plot extra)",
    ("planner.whatif.compare", "simulate"): "start-up: `paraplan whatif` / `sweep` with the analytic engine (the "
    "default) do not load the simulator and simpy (~0.09 s)",
    ("planner.whatif.sweep", "planner.search"): "start-up: only `sweep --replan` loads the search",
    ("planner.search.resimulate", "simulate"): "start-up: only `plan --refine` loads the simulator and simpy",
}

#: Modules that import by name at run time (importlib.import_module, __import__), with the reason; the
#: checker cannot follow such an import, so nowhere else may have one.
DYNAMIC_IMPORTS: dict[str, str] = {
    "planner.cli.lazy": "the lazy command table: a command's module (planner.cli.lazy.COMMANDS) is imported when the "
    "command runs; command modules import the app, never the table",
    "planner.cli.boundary": "typer's and click's exception classes, without importing click where it is not loaded",
}


@dataclass(frozen=True)
class Import:
    """One import edge: ``importer`` runs ``target`` (both module names) at ``path:line``."""

    importer: str
    target: str
    path: str
    line: int
    in_function: bool
    type_only: bool
    implicit: bool = False  # a parent package run before the named module


def find_modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every .py file of PACKAGES under ``root``."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _known(name: str, modules: dict) -> str | None:
    """``name`` or its closest enclosing module that is one of ``modules``."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, path: str, modules: dict):
        self.module, self.is_package, self.path, self.modules = module, is_package, path, modules
        self.depth, self.type_only, self.found = 0, False, []

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node):
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            return self.generic_visit(node)
        old, self.type_only = self.type_only, True
        for child in node.body:
            self.visit(child)
        self.type_only = old
        for child in node.orelse:
            self.visit(child)

    def _add(self, name: str, line: int):
        self.found.append((name, line, self.depth > 0, self.type_only))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            package = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(sub if sub in self.modules else base, node.lineno)


def read_imports(modules: dict[str, tuple[Path, bool]], sources: dict[str, str] | None = None) -> list[Import]:
    """Every import of every module (``sources`` overrides a module's text: the self-checks)."""
    out = []
    for module, (path, is_package) in modules.items():
        text = (sources or {}).get(module)
        tree = ast.parse(path.read_text() if text is None else text)
        visitor = _Visitor(module, is_package, str(path.relative_to(ROOT)), modules)
        visitor.visit(tree)
        for name, line, in_function, type_only in visitor.found:
            target = _known(name, modules) if name.split(".")[0] in PACKAGES else name
            if target is None or target == module:
                continue
            out.append(Import(module, target, visitor.path, line, in_function, type_only))
            parts = target.split(".")
            for i in range(1, len(parts)):  # parent packages run first, unless they enclose the importer
                parent = ".".join(parts[:i])
                if parent in modules and not (module == parent or module.startswith(parent + ".")):
                    out.append(Import(module, parent, visitor.path, line, in_function, type_only, True))
    return out


def first_party(imp: Import) -> bool:
    return imp.target.split(".")[0] in PACKAGES


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if first_party(imp):
            edges.setdefault(imp.importer, set()).add(imp.target)
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def part_of(module: str) -> str:
    """The part a module belongs to: ``planner.X`` inside planner, else its top-level package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "planner" and len(parts) > 1 else parts[0]


def layer_of(module: str) -> int | None:
    part = part_of(module)
    return next((i for i, (_, parts) in enumerate(LAYERS) if part in parts), None)


def upward(imports: list[Import]) -> list[str]:
    """Imports that go up, or sideways between two parts of one layer, as ``path:line importer -> target``."""
    bad = []
    for imp in imports:
        if not first_party(imp) or part_of(imp.importer) == part_of(imp.target):
            continue
        src, dst = layer_of(imp.importer), layer_of(imp.target)
        if src is None or dst is None or dst >= src:
            where = "sideways" if src == dst else "up"
            bad.append(f"{imp.path}:{imp.line} {imp.importer} -> {imp.target} ({where})")
    return sorted(set(bad))


def unexplained_function_imports(imports: list[Import]) -> list[str]:
    """Imports inside a function that no rule of the module docstring allows."""
    bad = []
    for imp in imports:
        if not imp.in_function or imp.implicit:
            continue
        top = imp.target.split(".")[0]
        if top in sys.stdlib_module_names or top in OPTIONAL_HEAVY or part_of(imp.importer) == "planner.cli":
            continue
        if any(imp.importer.startswith(a) and (imp.target + ".").startswith(b + ".")
               for a, b in FUNCTION_LEVEL_OK):
            continue
        bad.append(f"{imp.path}:{imp.line} {imp.importer} -> {imp.target}")
    return sorted(set(bad))


def shortest_cycle(component: list[str], imports: list[Import]) -> list[Import]:
    """The shortest cycle through the modules of ``component``, as the imports that form it."""
    members = set(component)
    first: dict[tuple[str, str], Import] = {}
    for imp in sorted(imports, key=lambda i: (i.implicit, i.path, i.line)):
        if imp.importer in members and imp.target in members:
            first.setdefault((imp.importer, imp.target), imp)
    succ: dict[str, list[str]] = {}
    for a, b in sorted(first):
        succ.setdefault(a, []).append(b)
    best: list[str] = []
    for start in sorted(members):
        parent: dict[str, str | None] = {start: None}
        queue, found = [start], None
        for node in queue:  # breadth first: the first edge back to ``start`` closes a shortest cycle
            if start in succ.get(node, ()):
                found = node
                break
            for child in succ.get(node, ()):
                if child not in parent:
                    parent[child] = node
                    queue.append(child)
        if found is not None:
            path = [found]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            cycle = path[::-1] + [start]
            if not best or len(cycle) < len(best):
                best = cycle
    return [first[(a, b)] for a, b in zip(best, best[1:])]


def _cycle_lines(component: list[str], imports: list[Import]) -> str:
    hops = shortest_cycle(component, imports)
    lines = [f"    {i.path}:{i.line} {i.importer} -> {i.target}{' (in a function)' if i.in_function else ''}"
             f"{' (its parent package runs first)' if i.implicit else ''}" for i in hops]
    return f"{len(component)} modules import each other, e.g.:\n" + "\n".join(lines)


def test_no_import_cycles():
    imports = read_imports(find_modules())
    found = cycles(imports)
    assert not found, "import cycles:\n" + "\n".join(_cycle_lines(c, imports) for c in found)


def test_imports_only_go_down():
    bad = upward(read_imports(find_modules()))
    assert not bad, "imports against LAYERS:\n" + "\n".join(bad)


def test_every_module_has_a_layer():
    missing = sorted({part_of(m) for m in find_modules() if layer_of(m) is None})
    assert not missing, f"parts without a layer in LAYERS: {missing}"


def test_function_level_imports_have_a_reason():
    bad = unexplained_function_imports(read_imports(find_modules()))
    assert not bad, ("imports inside a function (hoist them, or add the reason to FUNCTION_LEVEL_OK):\n"
                     + "\n".join(bad))


def test_allow_list_entries_are_used():
    imports = [i for i in read_imports(find_modules()) if i.in_function]
    unused = [k for k in FUNCTION_LEVEL_OK
              if not any(i.importer.startswith(k[0]) and (i.target + ".").startswith(k[1] + ".") for i in imports)]
    assert not unused, f"FUNCTION_LEVEL_OK entries no import needs: {unused}"
    dynamic = {m for m, _ in dynamic_imports(find_modules())}
    assert set(DYNAMIC_IMPORTS) <= dynamic, f"DYNAMIC_IMPORTS entries no module needs: {set(DYNAMIC_IMPORTS) - dynamic}"


def dynamic_imports(modules: dict[str, tuple[Path, bool]]) -> list[tuple[str, int]]:
    """(module, line) of every call of importlib.import_module or __import__."""
    out = []
    for module, (path, _) in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("__import__", "import_module") or name.endswith(".import_module"):
                    out.append((module, node.lineno))
    return out


def test_imports_by_name_only_where_listed():
    bad = [f"{m}:{line}" for m, line in dynamic_imports(find_modules()) if m not in DYNAMIC_IMPORTS]
    assert not bad, "imports by name the checker cannot follow (import the module, or list it in DYNAMIC_IMPORTS):\n" \
        + "\n".join(bad)


def test_checker_sees_an_injected_upward_import():
    modules = find_modules()
    base = modules["planner.specs.base"][0].read_text()
    injected = read_imports(modules, {"planner.specs.base": base + "\nfrom planner.cost import estimate\n"})
    assert any("planner.specs.base -> planner.cost (up)" in line for line in upward(injected))


def test_checker_sees_a_cycle_hidden_in_a_function():
    modules = find_modules()
    text = modules["planner.work.ops"][0].read_text()
    hidden = text + "\n\ndef _dodge():\n    from planner.search import engine  # noqa\n    return engine\n"
    injected = read_imports(modules, {"planner.work.ops": hidden})
    assert any("planner.work.ops" in c and "planner.search.engine" in c for c in cycles(injected))
    assert any("planner.work.ops -> planner.search" in line for line in unexplained_function_imports(injected))
