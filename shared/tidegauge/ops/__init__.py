"""Operator commands: ``tidegauge metrics``, ``status``, ``top`` and ``dashboard`` read the same Redis keys as
dashboards; ``config`` checks a document; ``doctor`` and ``explain`` look at a cluster through the
``kubernetes`` client (:mod:`.cluster`)."""
