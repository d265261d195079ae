"""Description of work: FLOPs, bytes moved and bytes held by a training step (no time here)."""
