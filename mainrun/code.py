"""The project files a stage's command imports, transitively, and their digests: the code its results depend on.

The code stage writes them for the train stage (data/code/train.json), and every train stage depends on that one
file instead of on each module: an edit to a module a run imports re-trains it, any other edit re-trains nothing,
and dvc.lock holds one entry per run where it held fourteen (DVC reads and rewrites it around every stage).
"""
import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str, root: Path = ROOT) -> Path | None:
    path = root.joinpath(*module.split("."))
    return next((p for p in (path.with_suffix(".py"), path / "__init__.py") if p.is_file()), None)


def imports(path: Path, module: str) -> set[str]:
    """Every module named by an import in the file, function-level ones too, relative ones made absolute."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{node.module}" if node.module else parent
            found |= {base} | {f"{base}.{a.name}" for a in node.names}  # `from . import x` may name a module
    return found


def project_files(module: str, root: Path = ROOT) -> list[str]:
    """The files under root that running the module imports, transitively, packages' __init__ included (empty
    ones left out), sorted."""
    files, todo = {}, [module]
    while todo:
        parts = todo.pop().split(".")
        for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
            path = module_file(name, root)
            if path and name not in files:
                files[name] = path
                todo += imports(path, name)
    return sorted(p.relative_to(root).as_posix() for p in files.values() if p.read_text().strip())


def digests(module: str, root: Path = ROOT) -> dict[str, str]:
    """{file: md5 of its bytes} of every project file the module imports."""
    return {f: hashlib.md5((root / f).read_bytes()).hexdigest() for f in project_files(module, root)}
