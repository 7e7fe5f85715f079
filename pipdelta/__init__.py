"""pipdelta: upgrade Python packages by downloading byte-exact wheel patches instead of whole wheels."""

from pipdelta.apply.applier import apply_patch
from pipdelta.apply.installed import InstalledDistribution
from pipdelta.apply.sources import InstalledSource, OldContent, WheelSource
from pipdelta.format.patchfile import Target
from pipdelta.make.maker import MakeReport, make_patch

__version__ = "0.1.0"
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
