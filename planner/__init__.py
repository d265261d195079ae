"""paraplan: plan, estimate and simulate distributed training of transformer models.

The library never prints; the CLI (`planner.cli`) renders. See ARCHITECTURE in docs/.
"""

__version__ = "0.1.0"
