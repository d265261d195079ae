"""Load framework recipes (``hwprofiles/recipes/<name>.yaml``) by name, alias or path, validated by
pydantic like hardware profiles; every rule must have a ``sources`` entry."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import ValidationError

from planner.errors import SpecError, format_validation_error, suggest
from planner.specs.recipe import RECIPE_NAMES, UNSOURCED_FIELDS, RecipeSpec
from planner.specs.recipe_source import install_recipe_source

from .loader import read_yaml

_HERE = Path(__file__).resolve().parent


def recipes_dir() -> Path:
    """Folder of the built-in recipe files."""
    return _HERE / "recipes"


def list_recipes() -> list[str]:
    """Names of the built-in recipes, sorted."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def recipe_from_dict(data: dict, source: str) -> RecipeSpec:
    """Validate a recipe mapping; SpecError naming ``source`` and the field on failure (also when a
    rule has no source)."""
    try:
        recipe = RecipeSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), source=source) from None
    missing = [k for k in RecipeSpec.model_fields if k not in UNSOURCED_FIELDS and k not in recipe.sources]
    if missing:
        raise SpecError(f"rules without a source: {', '.join(missing[:5])}", field="sources", source=source)
    return recipe


#: what a derived recipe (``base:``) never takes from its base: who it is
OWN_FIELDS = ("name", "description", "framework", "aliases", "base")


@functools.lru_cache(maxsize=32)
def _load_path(path: str) -> RecipeSpec:
    return recipe_from_dict(_merged_data(path, ()), path)


def _merged_data(path: str, seen: tuple[str, ...]) -> dict:
    """The recipe mapping of ``path`` with its ``base:`` recipe's rules filled in under it: rules and
    sources it does not state are the base's, notes are the base's followed by its own. SpecError on
    an unknown base or a cycle."""
    data = read_yaml(Path(path))
    base = data.get("base") if isinstance(data, dict) else None
    if not base:
        return data
    if base in seen or not isinstance(base, str) or base not in RECIPE_NAMES:
        raise SpecError(f"base '{base}' is not another built-in recipe (allowed: {', '.join(RECIPE_NAMES)})",
                        field="base", source=path)
    parent = _merged_data(str(recipes_dir() / f"{base}.yaml"), seen + (data.get("name", path),))
    merged = {k: v for k, v in parent.items() if k not in OWN_FIELDS}
    merged.update({k: v for k, v in data.items() if k not in ("sources", "notes")})
    merged["sources"] = {**parent.get("sources", {}), **data.get("sources", {})}
    merged["notes"] = list(parent.get("notes", [])) + list(data.get("notes", []))
    return merged


@functools.lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    out = {}
    for name in list_recipes():
        for alias in _load_path(str(recipes_dir() / f"{name}.yaml")).aliases:
            out[alias] = name
    return out


def canonical_recipe_name(name: str) -> str:
    """The recipe name ``name`` selects (an alias such as ``megatron`` maps to ``megatron-lm``);
    SpecError listing the allowed values otherwise."""
    if name in RECIPE_NAMES:
        return name
    alias = _aliases().get(name)
    if alias is None:
        allowed = list(RECIPE_NAMES) + sorted(_aliases())
        raise SpecError(f"unknown recipe '{name}'; {suggest(name, allowed)}", field="recipe")
    return alias


@functools.lru_cache(maxsize=64)
def load_recipe(name: str) -> RecipeSpec:
    """A built-in recipe by name or alias, or a recipe YAML path."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        if not Path(name).exists():
            raise SpecError("no such file", source=name)
        return _load_path(str(Path(name).resolve()))
    return _load_path(str(recipes_dir() / f"{canonical_recipe_name(name)}.yaml"))


#: TrainingSpec resolves its recipe through these (the specs never read a file)
install_recipe_source(canonical_recipe_name, load_recipe)
