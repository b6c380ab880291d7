"""The README's Redis schema (for dashboard authors) names the keys and the version the store writes."""

from __future__ import annotations

import re
from pathlib import Path

from tidegauge import store

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SCHEMA = README.split("\n## Redis schema (for dashboard authors)\n", 1)[1].split("\n## ", 1)[0]


def test_readme_schema_version_is_the_one_the_store_writes() -> None:
    assert re.findall(r"Schema version (\d+) \(`GET tg:schema` → `\"(\d+)\"`\)", SCHEMA) == [
        (store.SCHEMA_VERSION, store.SCHEMA_VERSION)
    ]
    assert store.SCHEMA_KEY == "tg:schema"


def test_readme_schema_table_names_every_key_of_a_metric_the_store_writes() -> None:
    # GIVEN the key names the store derives for a metric, with the metric as the README writes it
    keys = [
        store.latest_key("<metric>"),
        store.feed_key("<metric>"),
        store.changes_key("<metric>"),
        store.history_key("<metric>", "<series id>"),
        store.meta_key("<metric>"),
        store.METRICS_KEY,
        store.COLLECTORS_KEY,
    ]
    # THEN each is a row of the table
    rows = set(re.findall(r"^\| `([^`]+)` \|", SCHEMA, re.M))
    assert [key for key in keys if key not in rows] == []
    # AND the change-log length the README states is the store's
    assert f"last {store.CHANGE_LOG_VERSIONS:,} versions" in SCHEMA
