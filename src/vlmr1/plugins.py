"""A user's own code named ``package.module:attr`` (rewards, tasks), found as ``python -m`` would find it."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def load_object(module_name: str, attr_path: str) -> Any:
    """``module_name.attr_path`` (dots walk attributes). A module that is not importable is looked for in the working
    directory too (the ``vlmr1`` console script, unlike ``python -m``, does not put it on ``sys.path``); it is
    appended, so it never shadows an installed package.

    Raises:
        ImportError: the module is not found or fails to import.
        AttributeError: it has no such attribute.
    """
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != module_name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.append(cwd)
        obj = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj
