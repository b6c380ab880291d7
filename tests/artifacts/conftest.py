"""Checks of the built artifacts (the Lambda layer, the server image's Python closure).

They download the pinned wheels from the package registry, so they run in ``make check-artifacts``, not in
``make test``: every test in this folder carries the ``artifacts`` marker, which ``make test`` deselects.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/artifacts/" in item.nodeid:
            item.add_marker(pytest.mark.artifacts)
