"""Load hardware profiles and model specs by name or path, with one clear error per bad input."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner.errors import NotFoundError, ParaplanWarning, SpecError, format_validation_error, suggest
from planner.io import STDIN, parse_json_text, read_input_text
from planner.specs import HardwareProfile, ModelSpec

from .hf_config import model_from_hf_config

_HERE = Path(__file__).resolve().parent
# libyaml's loader parses the profiles ~10x faster than the pure-Python one (start-up of `hw list`).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def hardware_dir() -> Path:
    """Folder of the built-in hardware profiles."""
    return _HERE / "hardware"


def models_dir() -> Path:
    """Folder of the built-in model-zoo files."""
    return _HERE / "models"


def list_hardware() -> list[str]:
    """Names of the built-in hardware profiles, sorted."""
    return sorted(p.stem for p in hardware_dir().glob("*.yaml"))


def list_models() -> list[str]:
    """Names of the built-in models, sorted."""
    return sorted(p.stem for p in models_dir().glob("*.yaml"))


def parse_yaml_text(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text holding a mapping; SpecError naming ``source`` on syntax errors or a non-mapping."""
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"malformed YAML{where}: {getattr(exc, 'problem', exc)}", source=source) from None
    except (ValueError, RecursionError) as exc:  # e.g. libyaml's "unacceptable character"
        raise SpecError(f"malformed YAML: {exc}", source=source) from None
    if not isinstance(data, dict):
        raise SpecError("expected a YAML mapping at the top level", source=source)
    return data


def read_yaml(path: Path | str, what: str = "file") -> dict[str, Any]:
    """Parse a YAML mapping file (``-`` = standard input; planner.io.read_input_text refuses what is
    not a regular file or is too large for ``what`` before reading); SpecError naming the file."""
    return parse_yaml_text(read_input_text(path, what), str(path))


def _looks_like_path(name: str) -> bool:
    return "/" in name or name.endswith((".yaml", ".yml", ".json"))


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overlay`` into a copy of ``base`` (lists and scalars are replaced)."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve(name: str, folder: Path, choices: list[str], what: str) -> Path:
    if name == STDIN:
        return Path(STDIN)
    if not name.strip():
        raise SpecError(f"an empty {what} name; {suggest(name, choices)}", field=what)
    if what == "model" and Path(name).is_dir():  # a Hugging Face model folder
        config = Path(name) / "config.json"
        if not config.is_file():
            raise SpecError("a folder without config.json (expected a Hugging Face model folder)", source=name)
        return config
    if _looks_like_path(name):
        path = Path(name)
        if not path.exists():
            raise SpecError("no such file", source=name)
        if path.is_dir():
            raise SpecError(f"a folder, expected a {what} file", source=name)
        return path
    path = folder / f"{name}.yaml"
    if not path.exists() and Path(name).is_file():  # a file in the current folder, named without a suffix
        return Path(name)
    if not path.exists():
        raise NotFoundError(f"unknown {what} '{name}'; {suggest(name, choices)}", field=what)
    return path


def hardware_from_dict(data: dict[str, Any], source: str) -> HardwareProfile:
    """Validate a profile mapping; SpecError naming ``source`` and the field on failure."""
    try:
        profile = HardwareProfile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=source) from None
    missing = unsourced_numbers(data)
    if missing:
        raise SpecError(f"numbers without a source: {', '.join(missing[:5])}", field="sources", source=source)
    return profile


#: Top-level keys every whole profile has and a calibration overlay never needs together.
_PROFILE_KEYS = ("schema_version", "name", "device", "node", "network")
#: A calibrated figure further than this factor from the base figure is worth a warning.
OVERLAY_WARN_FACTOR = 10.0


def _load_hardware(path: str, calibration: str | None) -> HardwareProfile:
    data = read_yaml(path, "hardware")
    if not calibration:
        return hardware_from_dict(data, path)
    hardware_from_dict(data, path)  # a fault of the base profile names the base, not the overlay
    try:
        overlay = read_yaml(calibration, "calibration")
    except SpecError as exc:
        raise SpecError(str(exc).removeprefix(f"{calibration}: "), field="--calibration", source=calibration) from None
    if sum(k in overlay for k in _PROFILE_KEYS) >= 3:
        raise SpecError("a whole hardware profile, not a calibration overlay; give it as --hardware FILE (an overlay "
                        "holds only the fitted figures: paraplan calibrate --out writes one)",
                        field="--calibration", source=calibration)
    meta = overlay.pop("calibration", None)
    base = overlay.pop("base", None)
    if base is None and isinstance(meta, dict):
        base = meta.get("base")
    if base is not None and base != data.get("name"):
        raise SpecError(f"an overlay made for base profile '{base}', not for '{data.get('name')}'; "
                        f"use --hardware {base}", field="--calibration", source=calibration)
    for key, old, new in overlay_moves(data, overlay):
        warnings.warn(ParaplanWarning(
            f"--calibration {calibration}: {key} moves from {old:g} to {new:g} ({max(new / old, old / new):.0f}x the "
            f"base profile '{data.get('name')}'); check the overlay was fitted on this hardware"), stacklevel=2)
    merged = deep_merge(data, overlay)
    if meta is not None:
        merged.setdefault("notes", []).append(f"calibration overlay {calibration} applied")
    try:
        return hardware_from_dict(merged, calibration)
    except SpecError as exc:
        raise SpecError(str(exc).removeprefix(f"{calibration}: "), field="--calibration", source=calibration) from None


def overlay_moves(base: dict[str, Any], overlay: dict[str, Any], prefix: str = "") -> list[tuple[str, float, float]]:
    """(dotted key, base figure, overlay figure) for every positive number of ``overlay`` that is more
    than OVERLAY_WARN_FACTOR times larger or smaller than the same key of ``base``."""
    out: list[tuple[str, float, float]] = []
    for key, new in overlay.items():
        if prefix == "" and key in ("sources", "notes", "calibration"):
            continue
        old = base.get(key) if isinstance(base, dict) else None
        if isinstance(new, dict) and isinstance(old, dict):
            out += overlay_moves(old, new, f"{prefix}{key}.")
        elif (isinstance(new, (int, float)) and isinstance(old, (int, float)) and not isinstance(new, bool)
              and not isinstance(old, bool) and new > 0 and old > 0
              and max(new / old, old / new) > OVERLAY_WARN_FACTOR):
            out.append((f"{prefix}{key}", float(old), float(new)))
    return out


_load_hardware_cached = functools.lru_cache(maxsize=64)(_load_hardware)


def load_hardware(name: str, calibration: str | None = None) -> HardwareProfile:
    """A built-in profile by name or a YAML path (``-``: standard input), optionally with a calibration
    overlay applied (errors in the overlay name the overlay file and ``--calibration``)."""
    path = _resolve(name, hardware_dir(), list_hardware(), "hardware")
    if calibration == STDIN or str(path) == STDIN:
        return _load_hardware(str(path), calibration)
    if calibration:
        _check_overlay_file(calibration)
    return _load_hardware_cached(str(path), calibration)


def _check_overlay_file(calibration: str) -> None:
    """SpecError naming ``--calibration`` and the file when the overlay is missing or not a regular file."""
    p = Path(calibration)
    if not p.exists():
        raise SpecError("no such calibration overlay file", field="--calibration", source=calibration)
    if not p.is_file():
        raise SpecError("not a regular file, expected a calibration overlay YAML", field="--calibration",
                        source=calibration)


def unsourced_numbers(data: dict[str, Any]) -> list[str]:
    """Dotted paths of numeric leaves that no ``sources`` key (or prefix of it) covers."""
    sources = data.get("sources") or {}
    out: list[str] = []

    def covered(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:k]) in sources for k in range(len(parts), 0, -1))

    def walk(node: Any, path: str) -> None:
        if isinstance(node, bool):
            return
        if isinstance(node, (int, float)):
            if path != "schema_version" and not covered(path):
                out.append(path)
        elif isinstance(node, dict):
            for k, v in node.items():
                if path == "" and k in ("sources", "notes"):
                    continue
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(data, "")
    return out


def _load_model(path: str) -> ModelSpec:
    """A model file recognised by its content: a JSON object with ``model_type`` or ``architectures``
    (whatever the file is called) is a Hugging Face config; other JSON with a .json name is read as
    one (and says what it lacks); anything else is a paraplan model YAML."""
    p = Path(path)
    text = read_input_text(path, "model")
    data: Any = None
    if text.lstrip().startswith("{"):
        try:
            data = parse_json_text(text, path, "config.json")
        except SpecError:
            if p.suffix == ".json":
                raise
    if isinstance(data, dict) and data.get("kind") == "paraplan-scenario":
        raise SpecError("a paraplan scenario file, not a model; give it as --layout FILE (or as whatif's BASE)",
                        source=path)
    if isinstance(data, dict) and ("model_type" in data or "architectures" in data or p.suffix == ".json"):
        return model_from_hf_config(data, source=path, default_name=hf_model_name(p, data))
    if p.suffix == ".json":
        raise SpecError("expected a JSON object (a Hugging Face config.json)", source=path)
    data = parse_yaml_text(text, path)
    if "model_type" in data or "architectures" in data:  # a config.json saved as YAML
        return model_from_hf_config(data, source=path, default_name=hf_model_name(p, data))
    data.setdefault("name", "stdin" if path == STDIN else p.stem)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=path) from None


_load_model_cached = functools.lru_cache(maxsize=128)(_load_model)


def hf_model_name(path: Path, data: dict[str, Any]) -> str:
    """The name of a model read from a Hugging Face config: the last part of ``_name_or_path`` when
    the file records one (``meta-llama/Llama-2-7b-hf`` -> ``Llama-2-7b-hf``); else the folder of a file
    called ``config.json`` (the Hugging Face layout); else the file's stem less a ``-config`` /
    ``_config`` / ``.config`` ending (``x-config.json`` -> ``x``)."""
    recorded = data.get("_name_or_path")
    if isinstance(recorded, str) and recorded.strip().strip("/"):
        return recorded.strip().rstrip("/").split("/")[-1]
    if str(path) == STDIN:
        return "stdin"
    if path.name == "config.json" and path.resolve().parent.name:
        return path.resolve().parent.name
    stem = path.stem
    for ending in ("-config", "_config", ".config"):
        if stem.endswith(ending) and len(stem) > len(ending):
            return stem[: -len(ending)]
    return stem


def load_model(name: str) -> ModelSpec:
    """A zoo model by name, a model YAML path, a Hugging Face ``config.json`` path (recognised by its
    content), a folder holding one, or ``-`` (standard input)."""
    path = _resolve(name, models_dir(), list_models(), "model")
    if str(path) == STDIN:
        return _load_model(STDIN)
    return _load_model_cached(str(path))


def published_layout(model_name: str) -> tuple[str, str] | None:
    """(layout in ``--reference`` syntax, citation) published with ``model_name``, or None."""
    data = read_yaml(_HERE / "data" / "published_layouts.yaml")
    entry = data.get(model_name)
    if not isinstance(entry, dict):
        return None
    return str(entry["layout"]), str(entry["source"])
