"""What the page carries inside it: the charting library's JavaScript and the runs' pictures.

The JavaScript is Vega, Vega-Lite and vega-embed as one bundle, taken from vl-convert (it
ships them, so no network is needed); making the bundle takes about a second, so it is kept
in the user's cache folder per vl-convert version. Pictures become small WebP thumbnails.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

from nnlab.errors import NnlabError

#: The longest side of a picture in the report, in pixels.
THUMBNAIL = 600
INSTALL = "pip install 'nnlab[report]'"


def check_installed() -> None:
    """Refuse early when the report's libraries are missing.

    Raises:
        NnlabError: saying how to install them (exit code 2).
    """
    import importlib.util

    packages = {"altair": "altair", "vl_convert": "vl-convert-python"}
    missing = [package for module, package in packages.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise NnlabError(f"the report needs {' and '.join(missing)}: {INSTALL}", source="nnlab report")


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "nnlab"


def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (``vegaEmbed`` global), from vl-convert."""
    import vl_convert

    version = getattr(vl_convert, "__version__", "unknown")
    cached = _cache_dir() / f"vega-bundle-{version}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    code = vl_convert.javascript_bundle()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(code, encoding="utf-8")
        os.replace(partial, cached)
    except OSError:
        pass  # no cache this time: the next report makes it again
    return code


def thumbnail(path: Path) -> str | None:
    """A picture as a ``data:`` URI of a WebP thumbnail; None when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL), reducing_gap=2.0)
            out = io.BytesIO()
            image.save(out, "WEBP", quality=70, method=3)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")
