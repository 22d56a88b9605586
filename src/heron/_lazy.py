"""Import a heavy library on first use rather than at import time.

The REST server imports every service's entities to build its routes; pandas and scipy
would add ~80 MB to an idle server that never profiles a frame itself.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._target = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._target)
        return getattr(module, attr)
