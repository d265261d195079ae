"""Load hardware profiles and model specs by name or path, with one clear error per bad input."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner.errors import NotFoundError, SpecError, format_validation_error, suggest
from planner.io import read_json
from planner.specs import HardwareProfile, ModelSpec

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


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping; SpecError naming the file on syntax errors or a non-mapping."""
    try:
        data = yaml.load(path.read_text(), Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"malformed YAML{where}: {getattr(exc, 'problem', exc)}", source=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError:
        raise SpecError("not a text file (expected UTF-8 YAML)", source=str(path)) from None
    except ValueError as exc:  # e.g. libyaml's "unacceptable character"
        raise SpecError(f"malformed YAML: {exc}", source=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("expected a YAML mapping at the top level", source=str(path))
    return data


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


@functools.lru_cache(maxsize=64)
def _load_hardware_cached(path: str, calibration: str | None) -> HardwareProfile:
    data = read_yaml(Path(path))
    if calibration:
        overlay = read_yaml(Path(calibration))
        meta = overlay.pop("calibration", None)
        base = overlay.pop("base", None)
        if base is None and isinstance(meta, dict):
            base = meta.get("base")
        if base is not None and base != data.get("name"):
            raise SpecError(f"an overlay made for base profile '{base}', not for '{data.get('name')}'; "
                            f"use --hardware {base}", field="--calibration", source=calibration)
        data = deep_merge(data, overlay)
        if meta is not None:
            data.setdefault("notes", []).append(f"calibration overlay {calibration} applied")
    return hardware_from_dict(data, path)


def load_hardware(name: str, calibration: str | None = None) -> HardwareProfile:
    """A built-in profile by name or a YAML path, optionally with a calibration overlay applied."""
    path = _resolve(name, hardware_dir(), list_hardware(), "hardware")
    if calibration and not Path(calibration).exists():
        raise SpecError("no such calibration overlay file", source=calibration)
    return _load_hardware_cached(str(path), calibration)


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


@functools.lru_cache(maxsize=128)
def _load_model_cached(path: str) -> ModelSpec:
    p = Path(path)
    if p.suffix == ".json":
        from .hf_config import model_from_hf_config

        data = read_json(p, "config.json")
        if not isinstance(data, dict):
            raise SpecError("expected a JSON object", source=path)
        return model_from_hf_config(data, source=path, default_name=hf_model_name(p, data))
    data = read_yaml(p)
    data.setdefault("name", p.stem)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=path) from None


def hf_model_name(path: Path, data: dict[str, Any]) -> str:
    """The name of a model read from a Hugging Face config: the last part of ``_name_or_path`` when
    the file records one (``meta-llama/Llama-2-7b-hf`` -> ``Llama-2-7b-hf``); else the folder of a file
    called ``config.json`` (the Hugging Face layout); else the file's stem less a ``-config`` /
    ``_config`` / ``.config`` ending (``x-config.json`` -> ``x``)."""
    recorded = data.get("_name_or_path")
    if isinstance(recorded, str) and recorded.strip().strip("/"):
        return recorded.strip().rstrip("/").split("/")[-1]
    if path.name == "config.json" and path.resolve().parent.name:
        return path.resolve().parent.name
    stem = path.stem
    for ending in ("-config", "_config", ".config"):
        if stem.endswith(ending) and len(stem) > len(ending):
            return stem[: -len(ending)]
    return stem


def load_model(name: str) -> ModelSpec:
    """A zoo model by name, a model YAML path, a Hugging Face ``config.json`` path or a folder holding one."""
    path = _resolve(name, models_dir(), list_models(), "model")
    return _load_model_cached(str(path))


def published_layout(model_name: str) -> tuple[str, str] | None:
    """(layout in ``--reference`` syntax, citation) published with ``model_name``, or None."""
    data = read_yaml(_HERE / "data" / "published_layouts.yaml")
    entry = data.get(model_name)
    if not isinstance(entry, dict):
        return None
    return str(entry["layout"]), str(entry["source"])
