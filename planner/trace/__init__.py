"""PyTorch profiler traces of real jobs: read (HolisticTraceAnalysis, ``read``), classify into the cost model's
op classes (``classes``), measure per step and class (``measure``, ``run``) and set against the cost model's
prediction (``compare``). Only ``read`` imports HTA; the CLI imports it for the trace commands alone."""
