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
    "Progress": "stylize",
    "Cancelled": "stylize",
    "StyleConfig": "config",
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
    from .config import PRESETS, ConfigError, StyleConfig, preset
    from .images import ImageError, load_image, save_image
    from .preview import preview
    from .stylize import Cancelled, Progress, stylize


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'painterly' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
