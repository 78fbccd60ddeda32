"""No module of mainrun imports one that imports it back, directly or through others (read from the source)."""
from conftest import ROOT
from mainrun.code import imports as named_imports

PACKAGE = ROOT / "mainrun"


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, modules: set[str]) -> set[str]:
    """The mainrun modules a file imports, anywhere in it (a function's import counts too)."""
    name = module_name(path)
    found = set()
    for t in named_imports(path, name):
        while t and t not in modules:  # mainrun.runner.repo.dvc -> mainrun.runner.repo
            t = t.rpartition(".")[0]
        if t and t != name and not name.startswith(t + "."):  # a package's own __init__ is not a cycle
            found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(files)) for name, path in files.items()}


def test_no_module_of_mainrun_imports_one_that_imports_it_back():
    g = graph()
    assert "mainrun.runner.repo" in g["mainrun.runner.local"]  # the reader sees relative imports
    assert cycles(g) == []


def test_the_reader_sees_every_import_the_interpreter_runs(tmp_path):
    """The reader (mainrun.code.imports, which the graph above and the code digests use) against a fresh interpreter
    that imports every module of mainrun: each import statement it executes in a module, of any module, is one the
    reader found in that module's file (plain `import x`, `from x import y`, relative and in-function ones)."""
    from fresh import loaded

    names = sorted(module_name(p) for p in PACKAGE.rglob("*.py"))
    seen = loaded(f"import importlib\nfor m in {names!r}:\n    importlib.import_module(m)", tmp_path / "seen.json")
    unseen = {}
    for importer, module in seen["edges"]:
        if importer in names and module not in named_imports(ROOT / seen["files"][importer], importer):
            unseen.setdefault(importer, set()).add(module)
    assert "mainrun.model" in seen["files"] and ("mainrun.model", "torch") in seen["edges"]  # it ran and recorded
    assert unseen == {}


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
