"""``make demo``: the closed autoscaling loop on one machine, with the real collectors and server.

The pure parts (the upstream HPA algorithm, the workload model, the timeline, chart and views) start
nothing; ``stack`` starts Redis, moto, the API server and the collectors as child processes, and
``driver`` steps the simulated world against them. ``command`` is ``tidegauge demo``.
"""

from __future__ import annotations
