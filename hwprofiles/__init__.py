"""Built-in hardware profiles, model-zoo files and framework recipes, and their loaders.

Hardware: ``hwprofiles/hardware/*.yaml``; models: ``hwprofiles/models/*.yaml``; recipes:
``hwprofiles/recipes/*.yaml``. A name or a path is accepted everywhere; a Hugging Face ``config.json``
path is imported as a model. Importing this package installs the recipe loader where a TrainingSpec
looks its recipe up (planner.specs.recipe_source).
"""

from .loader import (
    hardware_dir,
    list_hardware,
    list_models,
    load_hardware,
    load_model,
    models_dir,
)
from .recipe_loader import list_recipes, load_recipe

__all__ = ["hardware_dir", "list_hardware", "list_models", "list_recipes", "load_hardware", "load_model", "load_recipe",
           "models_dir"]
