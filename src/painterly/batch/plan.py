"""What a batch will make: the pairs, their output names and settings, and what is already done.

``plan_batch`` expands folders, globs and a CSV of pairs into ``BatchItem``s, checks every
input and option before any work starts (a file that is not an image is listed as skipped with
the reason; a bad option or an output folder that cannot be written is an error), and marks the
items whose output was already made with the same settings. Torch-free.

Each output has a sidecar ``NAME.json`` beside it with the settings it was made with (the
config, the inputs' SHA-256) and the output's own SHA-256, written after the picture (both
atomically): a rerun skips an output whose sidecar matches, and redoes one without a sidecar
(interrupted between the two writes), with a failed sidecar, or whose bytes do not match.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import re
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..config import ConfigError, StyleConfig, fields, preset
from ..flags import add_config_flag, flag
from ..images import SAVE_FORMATS, ImageError, load_image
from ..plan import RunPlan

DEFAULT_TEMPLATE = "{content}__{style}.png"
SIDECAR_VERSION = 1
# Fields that change how fast a picture is made, not the picture: left out of the settings key,
# so the same batch rerun with other processes or threads still skips what is done.
RUNTIME_FIELDS = ("threads", "preview_every")
STYLE_SEP = ";"  # several paintings in one CSV cell, blended

PathLike = Union[str, os.PathLike]


class BatchError(ValueError):
    """The batch cannot start as asked; the message says what to change."""


@dataclass(frozen=True)
class BatchItem:
    """One picture of the batch: its inputs, its settings and where it goes."""

    output: Path
    content: Path
    styles: tuple[Path, ...]
    config: StyleConfig
    key: str  # SHA-256 of the settings and the inputs' bytes; the sidecar records it
    run: RunPlan  # the run's scales and steps: how much of the batch's work this picture is
    row: Optional[int] = None  # the CSV row (1 = the first after the header)

    @property
    def name(self) -> str:
        return self.output.name

    def sidecar(self) -> Path:
        return sidecar_path(self.output)


@dataclass(frozen=True)
class Skipped:
    """An input that is left out, and why (not an image, unreadable, ...)."""

    path: str
    reason: str


@dataclass(frozen=True)
class BatchPlan:
    """The pictures to make (``todo``), those already made with the same settings (``done``),
    and the inputs left out (``skipped``)."""

    output_dir: Path
    todo: tuple[BatchItem, ...]
    done: tuple[BatchItem, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())

    @property
    def items(self) -> tuple[BatchItem, ...]:
        return self.done + self.todo


def sidecar_path(output: Path) -> Path:
    """out/a__b.png -> out/a__b.png.json."""
    return output.with_name(output.name + ".json")


def safe_name(text: str) -> str:
    """A file-name part from any text: letters, digits, '.', '-', '_' (others become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def settings_key(config: StyleConfig, content_sha: str, style_shas: Sequence[str], fmt: str) -> str:
    """What an output depends on: the options (less the runtime ones), the inputs, the format."""
    options = {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS}
    blob = json.dumps({"config": options, "content": content_sha, "styles": list(style_shas), "format": fmt})
    return _sha256(blob.encode())


def is_done(item: BatchItem) -> bool:
    """The output exists, is whole, and its sidecar says it was made with the same settings."""
    try:
        meta = json.loads(item.sidecar().read_text())
        data = item.output.read_bytes()
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and meta.get("status") == "done"
        and meta.get("key") == item.key
        and meta.get("output_sha256") == _sha256(data)
    )


def sidecar_record(item: BatchItem, status: str, data: bytes = b"", **extra: Any) -> dict[str, Any]:
    """The sidecar of a finished (``data``: the output's bytes) or failed picture."""
    record: dict[str, Any] = {
        "version": SIDECAR_VERSION,
        "status": status,
        "key": item.key,
        "content": str(item.content),
        "styles": [str(s) for s in item.styles],
        "config": item.config.to_dict(),
        **extra,
    }
    if data:
        record["output_sha256"] = _sha256(data)
    return record


# --- inputs -----------------------------------------------------------------------------------


class _Inputs:
    """Reads each input file once: its bytes' hash and size, or why it is not a usable image."""

    def __init__(self) -> None:
        self._ok: dict[Path, tuple[str, tuple[int, int]]] = {}
        self._bad: dict[Path, str] = {}

    def problem(self, path: Path, name: str) -> Optional[str]:
        """None for a usable image (then ``info`` has it), else the one-line reason."""
        path = path.resolve()
        if path not in self._ok and path not in self._bad:
            try:
                data = path.read_bytes()
                self._ok[path] = (_sha256(data), load_image(data, name=name).size)
            except ImageError as e:
                self._bad[path] = str(e)
            except OSError as e:
                self._bad[path] = f"cannot be read ({e.strerror or e})"
        return self._bad.get(path)

    def info(self, path: Path) -> tuple[str, tuple[int, int]]:
        """(sha256, (w, h)) of an image ``problem`` found usable."""
        return self._ok[path.resolve()]


def expand(specs: Sequence[PathLike], what: str) -> list[Path]:
    """Files from paths, folders (their files, sorted; hidden ones left out) and globs.

    Raises BatchError for a spec that names nothing.
    """
    found: list[Path] = []
    for spec in specs:
        text = os.fspath(spec)
        path = Path(text)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not matches:
                raise BatchError(f"{what} {text}: the pattern matches no file")
            found += matches
        else:
            raise BatchError(f"{what} {text}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise BatchError(f"no {what} given, or the folders are empty")
    return unique


# --- CSV of pairs -------------------------------------------------------------------------------


def _row_parser() -> argparse.ArgumentParser:
    """The CLI's own flags for StyleConfig's fields: a CSV cell is read as its flag would be."""

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            raise ConfigError(message)

    p = Parser(add_help=False, exit_on_error=False)
    for f in fields():
        add_config_flag(p, f)
    return p


def _row_options(row: Mapping[str, str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The options a CSV row sets (its non-empty cells), typed as the command line types them."""
    argv: list[str] = []
    kinds = {f.name: type(f.default) for f in fields()}
    for name, cell in row.items():
        text = (cell or "").strip()
        if not text:
            continue
        if kinds[name] is bool:
            on = text.lower() in ("1", "true", "yes", "on")
            if not on and text.lower() not in ("0", "false", "no", "off"):
                raise ConfigError(f"{name} must be true or false, got {text!r}")
            argv.append(flag(name) if on else "--no-" + flag(name)[2:])
        else:
            argv += [flag(name), *text.replace(",", " ").split()] if kinds[name] is tuple else [flag(name), text]
    args = parser.parse_args(argv)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items()}


def read_pairs(path: PathLike, base: StyleConfig) -> list[tuple[int, Path, list[Path], StyleConfig, str]]:
    """The rows of a CSV of pairs: (row, content, styles, config, output name or '').

    Columns: ``content`` and ``style`` (several paintings separated by ';'), optionally
    ``output`` (a file name instead of the template's) and ``preset``, and any StyleConfig
    field, each cell read as its command-line flag (``steps`` 200, ``style_layers``
    "relu1_1 relu2_1", ``clamp`` false); an empty cell keeps the batch's value. Relative paths
    are from the CSV's folder. Every row is checked here, before any work.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise BatchError(f"{path}: {e.strerror or e}") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    names = {f.name for f in fields()}
    missing = {"content", "style"} - set(columns)
    if missing:
        raise BatchError(f"{path}: the header needs the columns content and style (missing: {', '.join(missing)})")
    unknown = [c for c in columns if c not in names | {"content", "style", "output", "preset"}]
    if unknown:
        raise BatchError(f"{path}: unknown column(s) {', '.join(unknown)}; use StyleConfig's option names")
    parser = _row_parser()
    rows = []
    for n, raw in enumerate(reader, start=1):
        cells = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(cells.values()):
            continue
        where = f"{path} row {n}"
        if not cells.get("content") or not cells.get("style"):
            raise BatchError(f"{where}: content and style are both needed")
        try:
            options = _row_options({k: v for k, v in cells.items() if k in names}, parser)
            cfg = preset(cells["preset"], **options) if cells.get("preset") else base.replace(**options)
        except (ConfigError, argparse.ArgumentError) as e:
            raise BatchError(f"{where}: {e}") from None
        content = path.parent / cells["content"]
        styles = [path.parent / s.strip() for s in cells["style"].split(STYLE_SEP) if s.strip()]
        rows.append((n, content, styles, cfg, cells.get("output", "")))
    if not rows:
        raise BatchError(f"{path}: no pairs (the file has a header and no rows)")
    return rows


# --- output names -----------------------------------------------------------------------------


def check_template(template: str) -> str:
    """The template's format (from its extension); refuses fields other than content, style, row."""
    if "/" in template or "\\" in template:
        raise BatchError(f"name template {template!r}: a file name, not a path (outputs go to the output folder)")
    used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    bad = used - {"content", "style", "row"}
    if bad:
        raise BatchError(
            f"name template {template!r}: unknown field(s) {', '.join(sorted(bad))}; use {{content}}, "
            "{style}, {row}"
        )
    ext = Path(template).suffix.lower()
    if ext not in SAVE_FORMATS:
        raise BatchError(f"name template {template!r}: use a .png, .jpg or .webp name")
    return SAVE_FORMATS[ext]


def output_name(template: str, content: Path, styles: Sequence[Path], row: int) -> str:
    """``{content}__{style}.png`` -> 'chelsea__starry_night.png' (parts made file-name safe)."""
    style = "+".join(safe_name(s.stem) for s in styles)
    return template.format(content=safe_name(content.stem), style=style, row=row)


def check_output_dir(out: Path) -> Path:
    """Create the output folder if its parent exists; refuse one that cannot be written to."""
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out} is a file; give a folder for the outputs")
    if not out.exists():
        if not out.parent.is_dir():
            raise BatchError(f"{out}: the folder {out.parent} does not exist")
        try:
            out.mkdir()
        except OSError as e:
            raise BatchError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    try:  # the real test: os.access says yes to root on a read-only mount
        with tempfile.NamedTemporaryFile(dir=out, prefix=".painterly-check-"):
            pass
    except OSError as e:
        raise BatchError(f"{out}: the output folder is not writable ({e.strerror or e})") from None
    return out


# --- the plan ---------------------------------------------------------------------------------


def plan_batch(
    output_dir: PathLike,
    config: StyleConfig,
    *,
    contents: Sequence[PathLike] = (),
    styles: Sequence[PathLike] = (),
    pairs_csv: Optional[PathLike] = None,
    template: str = DEFAULT_TEMPLATE,
    redo: bool = False,
) -> BatchPlan:
    """Plan a batch: every content x every style, and/or the rows of a CSV of pairs.

    Args:
        output_dir: where the pictures go (created if its parent exists); must be writable,
            and not a folder the inputs are read from.
        config: the options of every picture (a CSV row may change some for itself).
        contents, styles: files, folders or globs; every content is paired with every style.
        pairs_csv: a CSV of pairs (see ``read_pairs``).
        template: the output file name: ``{content}``, ``{style}`` (the file names without
            extension, made safe; several styles joined by '+') and ``{row}``; its extension
            sets the format.
        redo: make every picture again, even those already done with the same settings.

    Raises:
        BatchError: nothing to do, a bad option or row, an unwritable output folder, or two
            pictures that would get the same name.
    """
    check_template(template)
    out = Path(output_dir)
    jobs: list[tuple[int, Path, list[Path], StyleConfig, str]] = []
    if bool(contents) != bool(styles):
        raise BatchError("give both contents and styles (every content is painted in every style), or a CSV of pairs")
    if contents:
        photos, paintings = expand(contents, "content"), expand(styles, "style")
        jobs += [(0, c, [s], config, "") for c in photos for s in paintings]
    if pairs_csv is not None:
        jobs += read_pairs(pairs_csv, config)
    if not jobs:
        raise BatchError("nothing to do: give contents and styles, or a CSV of pairs")
    inputs_dirs = {p.resolve().parent for _, c, ss, _, _ in jobs for p in (c, *ss)}
    if out.resolve() in inputs_dirs:
        raise BatchError(f"{out}: the outputs need a folder of their own, not one the inputs are read from")
    check_output_dir(out)

    inputs = _Inputs()
    skipped: dict[str, str] = {}
    names: dict[str, str] = {}  # output name -> the pair it is for
    items: list[BatchItem] = []
    for n, (row, content, paintings, cfg, name) in enumerate(jobs, start=1):
        what = [(content, "content image"), *((s, "style image") for s in paintings)]
        problems = {str(p): why for p, kind in what if (why := inputs.problem(p, kind)) is not None}
        if problems:
            for p, why in problems.items():
                skipped.setdefault(p, why)
            continue
        content_sha, size = inputs.info(content)
        shas = [inputs.info(s)[0] for s in paintings]
        filename = name or output_name(template, content, paintings, row or n)
        if Path(filename).name != filename or Path(filename).suffix.lower() not in SAVE_FORMATS:
            raise BatchError(f"row {row}: output {filename!r} must be a .png, .jpg or .webp file name, not a path")
        if filename in names:
            raise BatchError(
                f"two pictures would be called {filename} ({names[filename]} and {content.name} x "
                f"{'+'.join(s.name for s in paintings)}); add {{row}} to the name template or an output column"
            )
        names[filename] = f"{content.name} x {'+'.join(s.name for s in paintings)}"
        try:
            plan = RunPlan.build(cfg, *size, n_styles=len(paintings))
        except (ConfigError, ImageError) as e:
            raise BatchError(f"{filename}: {e}") from None
        key = settings_key(cfg, content_sha, shas, SAVE_FORMATS[Path(filename).suffix.lower()])
        items.append(
            BatchItem(
                output=out / filename,
                content=content,
                styles=tuple(paintings),
                config=cfg,
                key=key,
                run=plan,
                row=row or None,
            )
        )
    made = [False] * len(items) if redo else [is_done(i) for i in items]
    todo = tuple(i for i, m in zip(items, made) if not m)
    done = tuple(i for i, m in zip(items, made) if m)
    return BatchPlan(out, todo, done, tuple(Skipped(p, r) for p, r in skipped.items()))
