"""Command-line flags generated from ``StyleConfig``'s fields, and config values shown as flags.

A field's name, type, choices and help become its flag (``content_weight`` ->
``--content-weight``, ``clamp`` -> ``--clamp/--no-clamp``), so an option added to the config
appears on the command line with no code here.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .config import fields, video_fields

# Metavars that read better than the type's default.
METAVARS = {"size": "PX", "steps": "N", "weights": "PATH", "seed": "N", "threads": "N", "max_memory": "BYTES",
            "block_size": "PX"}  # fmt: skip


def flag(name: str) -> str:
    """'content_weight' -> '--content-weight'."""
    return "--" + name.replace("_", "-")


def show(value: Any) -> str:
    """A config value as users type it: tuples as space-separated lists."""
    if isinstance(value, tuple):
        return " ".join(map(str, value)) if value else "(empty)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def as_flag(name: str, value: Any) -> str:
    """How to set this value on the command line: --steps 1000, --no-clamp."""
    if isinstance(value, bool):
        return flag(name) if value else "--no-" + flag(name)[2:]
    return f"{flag(name)} {show(value)}"


def config_field(name: str) -> dataclasses.Field:
    """The StyleConfig field called ``name``."""
    return next(f for f in fields() if f.name == name)


def add_config_flag(group: Any, f: dataclasses.Field, *, default: Any = argparse.SUPPRESS, shown: Any = None) -> None:
    """Add the flag for one StyleConfig field: name, type, choices and help from the field.

    Conventions shared with ``config.validate``: the default's type is the field's type; a
    tuple field with "choices" lists VGG layer names, any other tuple lists numbers.
    ``default=SUPPRESS`` leaves the attribute out unless the user gives the flag, which is
    how a preset's values survive; ``shown`` is the default quoted in the help.
    """
    kind, meta = type(f.default), f.metadata
    help_text = meta["help"].replace("%", "%%")
    if shown is not None:
        help_text += f" [default: {show(shown)}]"
    kw: dict[str, Any] = {"dest": f.name, "default": default, "help": help_text}
    if kind is bool:
        group.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kw)
        return
    if kind is tuple:
        # Layer names are checked by config.validate, whose message is shorter than
        # argparse's list of all 37 choices.
        kw.update(nargs="*", type=str if "choices" in meta else float)
        kw.update(metavar="LAYER" if "choices" in meta else "W")
    else:
        kw["type"] = kind
        if "choices" in meta:
            kw["choices"] = meta["choices"]
        else:
            kw["metavar"] = METAVARS.get(f.name, {int: "N", float: "X", str: "TEXT"}.get(kind, "VALUE"))
    group.add_argument(flag(f.name), **kw)


def flag_message(message: str) -> str:
    """ConfigError names fields ("size must be ..."); on the command line, name the flag."""
    for f in (*fields(), *video_fields()):
        if message.startswith((f.name + " ", f.name + ":")):
            return flag(f.name) + message[len(f.name) :]
    return message
