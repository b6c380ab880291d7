"""Store additions the collectors rely on, on fakeredis, a real server and a real cluster."""

from __future__ import annotations

from tidegauge.model import CollectorStatus
from tidegauge.store import Store


def test_marker_round_trips_per_source(store: Store) -> None:
    # GIVEN markers written for two sources
    store.write_marker("orders", "last_active_at", 1_800_000_123.5)
    store.write_marker("billing", "last_active_at", 1_700_000_000.0)

    # WHEN they are read back, with one never written
    # THEN each source keeps its own value, and the unknown one is None
    assert store.read_marker("orders", "last_active_at") == 1_800_000_123.5
    assert store.read_marker("billing", "last_active_at") == 1_700_000_000.0
    assert store.read_marker("orders", "never_written") is None


def test_status_keeps_queries_without_data_apart_from_failures(store: Store) -> None:
    # GIVEN a CloudWatch run where two queries had no data and one failed
    status = CollectorStatus(
        source="shop-db",
        kind="cloudwatch",
        started_at=100.0,
        finished_at=101.0,
        ok=False,
        samples_written=5,
        series_failed=1,
        errors=("query rds_db_load: Forbidden: denied",),
        series_no_data=2,
    )

    # WHEN it is written and read back
    store.write_status(status)

    # THEN the no-data count survives next to the failure count
    assert store.read_statuses()["shop-db"] == status
