"""The `painterly` command (placeholder until the full CLI lands)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="painterly", description="Neural style transfer.")
    p.add_argument("--version", action="version", version=f"painterly {__version__}")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    make_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
