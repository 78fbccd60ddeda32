"""What a fresh interpreter really loads: the oracle the code digests and the import reader (mainrun.code) are
checked against, since neither may be checked with itself."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# Every import statement executed, as (importer, module): `from a import b` gives (m, a) and, when a.b is a module,
# (m, a.b); relative names made absolute. At exit: {module: file} of every module loaded.
RECORDER = """
import atexit, builtins, importlib.util, json, sys
OUT, edges, real = sys.argv.pop(1), set(), builtins.__import__

def record(name, globals=None, locals=None, fromlist=(), level=0):
    module = real(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__")
    if importer:
        target = importlib.util.resolve_name("." * level + name, globals.get("__package__")) if level else name
        edges.add((importer, target))
        edges.update((importer, f"{target}.{f}") for f in fromlist or () if f"{target}.{f}" in sys.modules)
    return module

def dump():
    files = {n: m.__file__ for n, m in list(sys.modules.items()) if getattr(m, "__file__", None)}
    with open(OUT, "w") as f:
        json.dump({"files": files, "edges": sorted(edges)}, f)

builtins.__import__ = record
atexit.register(dump)
"""


def loaded(code: str, out, args=(), cwd=ROOT, env=None) -> dict:
    """Run code (after RECORDER, with args as its sys.argv[1:]) in a fresh interpreter: {"files": {module: its file, relative
    to the project, for the project's files}, "edges": [(importer, module)]} of what it loaded and imported."""
    p = subprocess.run([sys.executable, "-c", RECORDER + code, str(out), *args], cwd=cwd, env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    seen = json.loads(out.read_text())
    files = {}
    for name, path in seen["files"].items():
        if Path(path).is_absolute() and Path(path).resolve().is_relative_to(ROOT.resolve()):
            rel = Path(path).resolve().relative_to(ROOT.resolve())
            if "site-packages" not in rel.parts and not rel.parts[0].startswith("."):  # a venv inside the project
                files[name] = rel.as_posix()  # (.venv, as make test makes it) is not the project's code
    return {"files": files, "edges": [tuple(e) for e in seen["edges"]]}
