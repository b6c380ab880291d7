"""``make demo``'s self-contained parts: the upstream HPA algorithm, the simulated workload, the views.

The modules here start no servers; the demo driver wires them to the real collectors and server.
"""

from __future__ import annotations
