"""``make demo``: the closed autoscaling loop on one machine, with the real collectors and server.

The pure parts start nothing: ``hpa`` (the upstream HPA algorithm), ``workload`` and ``scenario`` (the
simulated world), ``config`` (the demo's tidegauge configuration and its timing per time compression),
``timeline``, ``chart``, ``view`` and ``report``. ``stack`` starts Redis, moto, the API server and the
collectors as child processes; ``driver`` steps the simulated world against them; ``run`` holds
``Demo``, one run from start-up to report. ``command`` is ``tidegauge demo``.

Development only: the package is left out of the server image (``.dockerignore``); see docs/demo.md
for why the Lambda layer still carries it.
"""

from __future__ import annotations
