"""The ops page in a real headless Chromium (Debian's ``chromium``, driven by Playwright's Python package).

No ``playwright install``: the system browser is used. Where it is absent the test is skipped with the
reason printed (CI installs it in .ci/run). The screenshot is written under pytest's tmp path and
``build/screenshots/``, and its path printed.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tidegauge.localredis import RedisServer
from tidegauge.model import CollectorStatus, Sample
from tidegauge.ops.common import Target
from tidegauge.ops.dashboard import build_app
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.store import Store

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[Store]:
    seeded = Store.connect(ConnectionSettings(redis_server.url))
    seeded.client.flushall()  # type: ignore[attr-defined]
    now = time.time()
    seeded.describe("sqs_messages", unit="messages")
    for step in range(12):  # a history for the sparkline
        at = now - 60 + step * 5
        seeded.write([Sample.of("sqs_messages", {"queue": "orders"}, 100 + 40 * step, at, source="queues")])
    seeded.write([Sample.of("sqs_messages", {"queue": "archive"}, 3, now - 4000, source="queues")])
    status = CollectorStatus(
        "queues", "sqs", now - 3, now - 2, ok=True, samples_written=2, api_calls={"GetQueueAttributes": 2}
    )
    seeded.write_status(status)
    failed = CollectorStatus("aurora", "cloudwatch", now - 3, now - 2, ok=False, errors=("AccessDenied: no",))
    seeded.write_status(failed)
    try:
        yield seeded
    finally:
        seeded.close()


@pytest.fixture
def page_url(store: Store) -> Iterator[str]:
    """The dashboard app on a loopback port, in its own event loop thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(build_app(Target(store, None)), access_log=None)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}/?interval=300"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_the_page_shows_series_flags_the_stale_one_and_updates_without_reload(
    store: Store, page_url: str, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        print(f"SKIPPED: no {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            # GIVEN the page, loaded once
            page.goto(page_url)
            orders = page.locator('#series tr[data-labels="queue=orders"]')
            orders.wait_for(timeout=15_000)

            # THEN it shows the seeded series, with a sparkline of its history, and flags the old one stale
            assert orders.locator("td.value").inner_text() == "540 messages"
            assert orders.get_attribute("class") == "fresh"
            assert int(orders.locator("svg.spark").get_attribute("data-points") or 0) == 12
            archive = page.locator('#series tr[data-labels="queue=archive"]')
            assert archive.get_attribute("class") == "stale"
            assert archive.locator(".badge.stale").inner_text() == "stale"
            assert "AccessDenied" in page.locator("#collectors").inner_text()
            assert "$" in page.locator("#cost").inner_text()

            # WHEN a collector writes a new value
            page.evaluate("window.loadedOnce = true")
            store.write(
                [Sample.of("sqs_messages", {"queue": "orders"}, 2_000_000, time.time(), source="queues")]
            )

            # THEN the page shows it without a reload (the same window, the marker still set)
            page.wait_for_function(
                "() => document.querySelector('#series tr[data-labels=\"queue=orders\"] td.value')"
                ".textContent === '2M messages'",
                timeout=15_000,
            )
            assert page.evaluate("window.loadedOnce") is True
            assert int(page.locator("#refreshes").inner_text()) >= 2

            shot = tmp_path / "ops-page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    kept = SCREENSHOTS / "ops-page.png"
    shutil.copyfile(shot, kept)
    print(f"screenshot: {shot} (copy: {kept})")
