"""Every test in this folder uses real servers or tools: each carries the ``integration`` marker.

Marked here by folder, so a new file cannot forget it and ``pytest -m "not integration"`` is the fast suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kube_fake import FakeKubeApiServer
from tests.support.server_harness import Pki


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A fresh set of CAs and certificates (server, client, front proxy) in the test's own folder."""
    return Pki(tmp_path)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeApiServer]:
    """A fake kube-apiserver over real HTTPS on loopback, with an empty store (tests/support/kube_fake.py)."""
    fake = FakeKubeApiServer(tmp_path).start()
    try:
        yield fake
    finally:
        fake.stop()
