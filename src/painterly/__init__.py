"""painterly: neural style transfer (Gatys et al. 2015) for the web, the terminal and Python.

    >>> from painterly import stylize, load_image, preset
    >>> out = stylize(load_image("photo.jpg"), load_image("painting.jpg"), preset("default", size=384))
    >>> out.save("out.png")

Names are imported lazily (PEP 562) so that ``import painterly`` does not pay for torch
until the optimiser is used: the instant preview and the CLI start in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "stylize": "stylize",
    "Progress": "progress",
    "Cancelled": "progress",
    "StyleConfig": "config",
    "VideoConfig": "config",
    "stylize_video": "video",
    "ConfigError": "config",
    "PRESETS": "config",
    "preset": "config",
    "load_image": "images",
    "save_image": "images",
    "ImageError": "images",
    "preview": "preview",
}
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    # Explicit re-exports (``X as X``) for type checkers; at run time __getattr__ loads them.
    from .config import PRESETS as PRESETS
    from .config import ConfigError as ConfigError
    from .config import StyleConfig as StyleConfig
    from .config import VideoConfig as VideoConfig
    from .config import preset as preset
    from .images import ImageError as ImageError
    from .images import load_image as load_image
    from .images import save_image as save_image
    from .preview import preview as preview
    from .progress import Cancelled as Cancelled
    from .progress import Progress as Progress
    from .stylize import stylize as stylize
    from .video import stylize_video as stylize_video


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'painterly' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
