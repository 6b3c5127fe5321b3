"""The import structure of ``soar_env``, read from the source (every import statement, also
those inside functions): no cycle between modules, none between a subpackage and the
modules around it, no import of the agents, and experiments that the library never imports."""

import ast
from pathlib import Path

import soar_env

ROOT = Path(soar_env.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imported(module: str, path: Path) -> set[str]:
    """Every module name ``module`` imports (``from x import y``: x and x.y, one may be a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                base = ".".join([*package[: len(package) - node.level + 1], base]).strip(".")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    """Module -> the soar_env modules it imports."""
    return {m: {n for n in _imported(m, p) if n in MODULES and n != m} for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found




def _package_graph() -> dict[str, set[str]]:
    """The module graph with each subpackage as one node (soar_env.domains.chain -> soar_env.domains)."""
    def group(module: str) -> str:
        return ".".join(module.split(".")[:2])

    groups: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        groups.setdefault(group(module), set()).update(group(t) for t in targets)
    return {g: targets - {g} for g, targets in groups.items()}


def test_no_module_imports_the_agents():
    agents = {m for m, p in MODULES.items() if any(n.split(".")[0] == "soar_agents" for n in _imported(m, p))}
    assert agents == set()


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_upward_import_from_a_subpackage():
    """A subpackage (domains, student, ...) may use the modules around it, or be used by
    them, not both: domains/base.py reaching up into embedded.py, which builds on the
    domains, was such an arrow."""
    assert _cycles(_package_graph()) == []


def test_the_library_never_imports_the_experiments():
    experiments = {m for m in MODULES if m.startswith("soar_env.experiments")}
    users = {m for m, targets in _graph().items() if targets & experiments}
    assert users - experiments == {"soar_env.cli"}  # the `soar-env stones` command


def test_the_checks_see_a_cycle_an_upward_arrow_and_an_agents_import(tmp_path):
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    (tmp_path / "x.py").write_text("from soar_agents import app\nfrom ..domains import base\n")
    assert {"soar_agents.app", "soar_env.domains.base"} <= _imported("soar_env.student.x", tmp_path / "x.py")
