"""Package faces that import on first use.

Each area's `__init__.py` names its public functions and types (its `__all__`, as minbpe's faces do) and where they
live. A name is imported only when first asked for, so `import engine.training` does not pull in torch, peft and
bitsandbytes for a page that only wants a memory table, and a face never imports a module that imports the package
itself (no half-initialised packages).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_face(package: str, namespace: dict[str, Any], exports: dict[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of a face: `exports` maps a public name to the submodule (relative to `package`)
    that defines it, or to "submodule:name" when the face renames it. The first lookup imports that submodule and
    caches the name in the package namespace."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = exports[name].partition(":")
        value = getattr(import_module(f"{package}.{module}"), attr or name)
        namespace[name] = value
        return value

    return __getattr__
