"""Operator commands that read the same Redis keys as dashboards: ``tidegauge metrics`` and ``status``."""
