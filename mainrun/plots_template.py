"""An HTML template for `dvc plots show/diff` that renders without a network: python -m mainrun.plots_template [PATH]

DVC's default page loads Vega, Vega-Lite and vega-embed from a CDN, so offline it is blank. This page carries them
inline, bundled by the installed vl-convert-python package (never committed here), and has no `{scripts}`
placeholder, where DVC would put its CDN tags. PATH (default .dvc/plots/offline.html) is then set as
plots.html_template in .dvc/config.local, which is not committed. `make install` runs this once.
"""
import os
import subprocess
import sys
from pathlib import Path

from .config import MainrunError

DEFAULT = Path(".dvc/plots/offline.html")
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}", "{scripts}")  # what DVC replaces in the page
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- Vega, Vega-Lite and vega-embed, bundled by vl-convert-python VERSION -->
    <script type="text/javascript">
BUNDLE
    </script>
    <style>
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page(bundle: str, version: str) -> str:
    """The template around a JavaScript bundle that defines window.vegaEmbed."""
    if "</script" in bundle.lower() or any(p in bundle for p in PLACEHOLDERS):
        raise MainrunError("the vl-convert JavaScript bundle holds '</script' or a DVC placeholder and cannot be "
                           "inlined; pin another vl-convert-python version")
    return PAGE.replace("VERSION", version).replace("BUNDLE", bundle)


def bundle() -> tuple[str, str]:
    """(JavaScript, vl-convert version): Vega-Lite 5, the version DVC's plot templates are written for."""
    try:
        import vl_convert
    except ImportError:
        raise MainrunError("vl-convert-python is not installed: pip install -e '.[plots]' (or make install)") from None
    v5 = sorted((v for v in vl_convert.get_vegalite_versions() if v.startswith("5.")),
                key=lambda v: [int(n) for n in v.split(".")])
    return vl_convert.javascript_bundle(vl_version=v5[-1] if v5 else None), getattr(vl_convert, "__version__", "?")


def install(path: Path = DEFAULT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(page(*bundle()), encoding="utf-8")
    path.with_suffix(".tmp").replace(path)
    setting = os.path.relpath(path, ".dvc")  # DVC reads a relative path from .dvc/
    subprocess.run(["dvc", "config", "--local", "plots.html_template", setting], check=True)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    try:
        install(target)
    except MainrunError as e:
        sys.exit(f"error: {e}")
    print(f"dvc plots render offline: {target}, set in .dvc/config.local")
