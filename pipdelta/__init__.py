"""pipdelta: upgrade Python packages by downloading byte-exact wheel patches instead of whole wheels."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipdelta.apply.applier import apply_patch
    from pipdelta.apply.installed import InstalledDistribution
    from pipdelta.apply.sources import InstalledSource, OldContent, WheelSource
    from pipdelta.format.patchfile import Target
    from pipdelta.make.maker import MakeReport, make_patch

__version__ = "0.1.0"

# The public names are imported when first used: every command (`--help` too) imports this package, and the
# applier and the maker take about 0.1 s to import.
_HOMES = {
    "apply_patch": "pipdelta.apply.applier",
    "InstalledDistribution": "pipdelta.apply.installed",
    "InstalledSource": "pipdelta.apply.sources",
    "OldContent": "pipdelta.apply.sources",
    "WheelSource": "pipdelta.apply.sources",
    "Target": "pipdelta.format.patchfile",
    "MakeReport": "pipdelta.make.maker",
    "make_patch": "pipdelta.make.maker",
}
__all__ = [
    "InstalledDistribution",
    "InstalledSource",
    "MakeReport",
    "OldContent",
    "Target",
    "WheelSource",
    "__version__",
    "apply_patch",
    "make_patch",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'pipdelta' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
