"""A heavy library imported when it is first used, not when the application starts (issue 12.5).

``hd = LazyModule("highdicom")`` in place of ``import highdicom as hd``: the package is *found*
at once (a missing or broken installation still fails the start-up, loudly, naming the module),
and *executed* on the first attribute use (``hd.sr.CodedConcept``), under Python's import lock,
so two threads using it first at the same moment get the same, fully imported module.  An
error while executing it is raised at that first use, as the original ImportError.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module *name*; imported on the first attribute read."""

    def __init__(self, name: str) -> None:
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        self.__dict__["_name"] = name
        self.__dict__["_module"] = None

    def _load(self) -> ModuleType:
        mod = self.__dict__["_module"]
        if mod is None:
            mod = self.__dict__["_module"] = importlib.import_module(self.__dict__["_name"])
        return mod

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        state = "imported" if self.__dict__["_module"] is not None else "not imported yet"
        return f"<lazy module {self.__dict__['_name']!r} ({state})>"
