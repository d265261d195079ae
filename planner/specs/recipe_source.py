"""Where a recipe name finds its data, without the specs reading a file.

A ``TrainingSpec`` names its recipe; the recipe's rules and defaults are data files
(``hwprofiles/recipes/<name>.yaml``) that the loader layer reads. The specs sit below that loader, so
the loader installs its two functions here when it is imported (``hwprofiles.recipe_loader``, run by
``import hwprofiles``), and the specs ask through them: the dependency points down, from the loader
to the specs.
"""

from __future__ import annotations

from collections.abc import Callable

from .recipe import RecipeSpec

_SOURCE: dict[str, Callable] = {}


def install_recipe_source(canonical: Callable[[str], str], load: Callable[[str], RecipeSpec]) -> None:
    """Install the loader's functions: ``canonical`` maps a recipe name or alias to the recipe's name
    (SpecError listing the allowed values otherwise), ``load`` a recipe name to its RecipeSpec."""
    _SOURCE["canonical"], _SOURCE["load"] = canonical, load


def _source(kind: str) -> Callable:
    fn = _SOURCE.get(kind)
    if fn is None:
        raise RuntimeError("no recipe source installed: import hwprofiles first (hwprofiles.recipe_loader reads "
                           "the recipe files and installs itself in planner.specs.recipe_source)")
    return fn


def canonical_recipe(name: str) -> str:
    """The recipe name ``name`` selects (an alias such as ``megatron`` maps to ``megatron-lm``)."""
    return _source("canonical")(name)


def recipe_named(name: str) -> RecipeSpec:
    """The RecipeSpec of the recipe ``name``."""
    return _source("load")(name)
