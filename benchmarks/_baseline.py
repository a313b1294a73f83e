"""Load ``vlmr1.geometry`` as it was at an older commit, beside the current one, for same-process baselines.

``git archive REV src/vlmr1/geometry`` is unpacked into a temporary folder and imported as the package
``_baseline_geometry`` (the geometry package only imports itself relatively, numpy, scipy and pycocotools), so a
benchmark can time the old and the new code on the same masks, on the same machine, under the same load.
"""

from __future__ import annotations

import atexit
import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
# the last commit before the batched fits (issue 17, item 4)
DEFAULT_REV = "f277426"


def load_geometry(rev: str = DEFAULT_REV) -> ModuleType | None:
    """The geometry package at ``rev``, or None (with a note on stderr) when git or the commit is not available."""
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/vlmr1/geometry"], capture_output=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        print(f"baseline {rev}: not available ({e}); no baseline columns", file=sys.stderr)
        return None
    folder = Path(tempfile.mkdtemp(prefix="vlmr1-baseline-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(folder, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    package = folder / "src" / "vlmr1" / "geometry"
    spec = importlib.util.spec_from_file_location("_baseline_geometry", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["_baseline_geometry"] = module
    spec.loader.exec_module(module)
    return module
