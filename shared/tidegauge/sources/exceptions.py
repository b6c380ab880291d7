"""Errors of a collector invocation, shaped by how they are handled."""

from __future__ import annotations

from tidegauge.errors import OperationFailed


class CollectionError(OperationFailed):
    """The invocation cannot do its job (Redis unreachable, invalid config, bad event): fail it.

    Lambda then retries the invocation or hands it to its on-failure destination; a collector never
    reports success for samples it could not write.
    """


class UnrecognisedEventError(CollectionError):
    """The handler was invoked with an event it does not understand."""
