"""Built-in hardware profiles and model-zoo files, and their loader.

Hardware: ``hwprofiles/hardware/*.yaml``; models: ``hwprofiles/models/*.yaml``. A name or a path
is accepted everywhere; a Hugging Face ``config.json`` path is imported as a model.
"""

from .loader import (
    hardware_dir,
    list_hardware,
    list_models,
    load_hardware,
    load_model,
    models_dir,
)

__all__ = ["hardware_dir", "list_hardware", "list_models", "load_hardware", "load_model", "models_dir"]
