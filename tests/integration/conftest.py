"""Every test in this folder uses real servers or tools: each carries the ``integration`` marker.

Marked here by folder, so a new file cannot forget it and ``pytest -m "not integration"`` is the fast suite.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)
