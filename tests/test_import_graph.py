"""The import graph of ganworks: no circle, and no import from a lower floor to a higher one.

Every module's imports are read with ``ast``, those inside functions included: an import that runs
later still ties two modules together. Floors, bottom to top (a module imports its own floor or lower):

0. ``errors``, ``device``, ``extras`` and the package's ``__init__``;
1. ``nn``, ``data``, ``losses``, ``regularizers``: the building blocks;
2. ``objectives``, ``models``, ``metrics``, and beside these inputs of training ``config``,
   ``checkpoints`` (reading and writing runs' checkpoints) and ``classify`` (a run's classifier);
3. ``train``;
4. ``reproduce``, ``turing``, ``api``: what drives training or uses its runs;
5. ``cli`` and ``__main__``: the command line.

(``importlib.import_module`` calls with computed names, in ``models`` and ``metrics``'s lazy
``__init__``, stay inside their own package.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import ganworks

ROOT = Path(ganworks.__file__).parent

FLOORS = {
    "__init__": 0,
    "errors": 0,
    "device": 0,
    "extras": 0,
    "nn": 1,
    "data": 1,
    "losses": 1,
    "regularizers": 1,
    "config_keys": 1,
    "objectives": 2,
    "models": 2,
    "metrics": 2,
    "config": 2,
    "checkpoints": 2,
    "classify": 2,
    "train": 3,
    "reproduce": 4,
    "turing": 4,
    "api": 4,
    "cli": 5,
    "__main__": 5,
}

#: Imports allowed to go upward while they are being removed elsewhere: none left.
PENDING: set[tuple[str, str]] = set()


def modules(root: Path = ROOT, package: str = "ganworks") -> dict[str, tuple[Path, bool]]:
    """Every module under ``root``: dotted name -> (file, is a package's ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def _imported(name: str, is_package: bool, node: ast.AST, known) -> list[str]:
    """The modules ``node`` (an import statement in module ``name``) imports, as dotted names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:  # relative: from . / .. / ...
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    # `from pkg import sub` imports the submodule pkg.sub; `from mod import name` the module mod
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]


def import_graph(root: Path = ROOT, package: str = "ganworks") -> dict[str, set[str]]:
    """module -> the package's modules it imports anywhere in its file (functions included)."""
    known = modules(root, package)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for name, (path, is_package) in known.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(name, is_package, node, known):
                if target != package and not target.startswith(package + "."):
                    continue
                while target not in known:  # `import pkg.mod.attr` style: the longest module prefix
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    graph[name].add(target)
    return graph


def _pending(a: str, b: str, pending) -> bool:
    return any((a == x or a.startswith(x + ".")) and (b == y or b.startswith(y + ".")) for x, y in pending)


def cycles(graph: dict[str, set[str]], pending=()) -> list[list[str]]:
    """The import circles of ``graph`` (strongly connected components of more than one module, as a
    path around each), leaving out the ``pending`` (importer prefix, imported prefix) edges."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def edges(v):
        return sorted(w for w in graph.get(v, ()) if not _pending(v, w, pending))

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def floor(module: str, floors=FLOORS) -> int:
    parts = module.split(".")
    return floors[parts[1] if len(parts) > 1 else "__init__"]


def upward(graph: dict[str, set[str]], floors=FLOORS, pending=()) -> list[str]:
    """``a -> b (floor x -> y)`` for every import from a lower floor to a higher one."""
    return sorted(
        f"{a} -> {b} (floor {floor(a, floors)} -> {floor(b, floors)})"
        for a, targets in graph.items()
        for b in targets
        if floor(b, floors) > floor(a, floors) and not _pending(a, b, pending)
    )


# ---- the graph of ganworks -----------------------------------------------------------------------------


def test_every_module_of_ganworks_is_on_a_floor():
    tops = {m.split(".")[1] if "." in m else "__init__" for m in modules()}
    assert tops - set(FLOORS) == set(), "place the new module or package on a floor in FLOORS"


def test_the_import_graph_has_no_circle():
    assert cycles(import_graph(), PENDING) == []


def test_no_import_goes_from_a_lower_floor_to_a_higher_one():
    assert upward(import_graph(), pending=PENDING) == []


def test_config_does_not_import_train():
    assert sorted(t for t in import_graph()["ganworks.config"] if t.startswith("ganworks.train")) == []


def test_the_run_modules_import_each_other_one_way():
    """train/run.py on top; the launcher, the distributed wrapper, the loop and the experiment below it,
    each importing only those under it."""
    g = import_graph()
    t = "ganworks.train."
    for below in ("launch", "distributed", "loop", "experiment", "build", "runfolder", "runlock"):
        assert t + "run" not in g[t + below], below
    assert t + "distributed" not in g[t + "loop"] | g[t + "experiment"] | g[t + "build"]
    assert t + "loop" not in g[t + "experiment"] | g[t + "build"]
    assert t + "experiment" not in g[t + "build"]


# ---- the checks themselves find what they look for ------------------------------------------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_through_an_import_inside_a_function_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "from . import b\n",
            "low/b.py": "def f():\n    from .c import g\n",
            "low/c.py": "def g():\n    import pkg.low.a\n",
            "low/d.py": "from .a import thing\n",
        },
    )
    graph = import_graph(root, "pkg")
    assert graph["pkg.low.b"] == {"pkg.low.c"} and graph["pkg.low.c"] == {"pkg.low.a"}
    assert cycles(graph) == [["pkg.low.a", "pkg.low.b", "pkg.low.c"]]
    assert cycles(graph, pending={("pkg.low.c", "pkg.low.a")}) == []


def test_an_upward_import_inside_a_function_is_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "__init__.py": "",
            "base.py": "def f():\n    from .top import run\n",
            "top/__init__.py": "",
            "top/run.py": "from ..base import f\n",
        },
    )
    floors = {"__init__": 0, "base": 0, "top": 1}
    graph = import_graph(root, "pkg")
    assert upward(graph, floors) == ["pkg.base -> pkg.top.run (floor 0 -> 1)"]
    assert upward(graph, floors, pending={("pkg.base", "pkg.top")}) == []
