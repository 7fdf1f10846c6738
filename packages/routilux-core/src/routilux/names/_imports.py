"""
Importing the modules that register routines which no entry point declares (``--import``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys


__all__ = ["import_routines"]


def import_routines(*modules: str) -> None:
    """
    Import modules (names, or ``.py`` files by path) so that the routines they register are
    known, as ``routilux --import`` does. A file becomes a module named after its resolved
    path: two files of one name in different folders are two modules, and importing the same
    file again does nothing; a file whose code raises leaves no half-made module behind.

    Raises:
        ImportError: A module or file cannot be imported.
        Exception: Whatever the module's own code raises.
    """
    for name in modules:
        if name.endswith(".py"):
            _import_file(name)
        else:
            importlib.import_module(name)


def _import_file(path: str) -> None:
    resolved = os.path.realpath(path)
    stem = os.path.splitext(os.path.basename(resolved))[0]
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = f"routilux_cli_import_{stem}_{digest}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        msg = f"cannot import {path!r}"
        raise ImportError(msg)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        # Never leave a half-executed module behind.
        if sys.modules.get(name) is module:
            del sys.modules[name]
        raise
