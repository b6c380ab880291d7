"""The Lambda-facing part of a collector function: config from SSM, the Redis AUTH token, EMF metrics.

``functions/*/app.py`` keep one :class:`CollectorFunction` per process and hand it each event.

Powertools Parameters fetch both with caching (``CONFIG_MAX_AGE_SECONDS``, ``SECRET_MAX_AGE_SECONDS``),
through clients of the collector's own factory, so those calls are counted with the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, cast

import botocore.exceptions
from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

from tidegauge import environment
from tidegauge.config import Config, ConfigError, parse_config
from tidegauge.redis_connection import ConnectionSettings
from tidegauge.redis_settings import SecretFormatError, connection_settings
from tidegauge.sources.aws import ClientFactory, account_of_arn
from tidegauge.sources.collector import Collector
from tidegauge.sources.events import Trigger, parse_event, select_sources
from tidegauge.sources.exceptions import CollectionError
from tidegauge.sources.invocation import InvocationResult
from tidegauge.sources.ticks import Handoff, TickChain, TickQueue
from tidegauge.store import Store, StoreError

logger = logging.getLogger(__name__)

CONFIG_MAX_AGE_SECONDS = 300
"""A config change in SSM reaches warm functions within five minutes."""
SECRET_MAX_AGE_SECONDS = 300
IDLE_HEARTBEAT_METRIC = "IdleHeartbeat"
"""EMF metric (1 per invocation) of a function the config gives no source of its kind; the stack's
no-samples alarm counts it beside SamplesWritten."""

TICKS_DROPPED_METRIC = "TicksDropped"
"""EMF metric (1 per dropped tick): a duplicate delivery or a superseded chain's tick, not sampled."""

Kind = Literal["sqs", "cloudwatch"]


class MetricsSink(Protocol):
    """The part of Powertools ``Metrics`` used: EMF metrics with the default ``service`` dimension."""

    def add_metric(self, name: str, unit: str, value: float) -> None: ...
    def add_metadata(self, key: str, value: Any) -> None: ...


class Annotator(Protocol):
    """The part of Powertools ``Tracer`` used."""

    def put_annotation(self, key: str, value: str) -> None: ...


class InvocationContext(Protocol):
    """The part of the Lambda context used: the deadline, and the function's ARN (its account)."""

    @property
    def invoked_function_arn(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


def record_metrics(metrics: MetricsSink, result: InvocationResult, api_calls: Mapping[str, int]) -> None:
    """Emit one invocation's figures as EMF metrics (and per-operation calls as metadata)."""
    metrics.add_metric("SamplesWritten", "Count", result.samples_written)
    metrics.add_metric("CollectionErrors", "Count", result.errors)
    metrics.add_metric("AwsApiCalls", "Count", sum(api_calls.values()))
    metrics.add_metric("MetricsRequested", "Count", result.metrics_requested)
    metrics.add_metric("CollectionDuration", "Seconds", result.duration_seconds)
    metrics.add_metric("SamplingRounds", "Count", result.rounds)
    metrics.add_metric("SeriesNoData", "Count", sum(status.series_no_data for status in result.statuses))
    if result.newest_sample_at is not None:
        age = max(0.0, result.finished_at - result.newest_sample_at)
        metrics.add_metric("NewestSampleAgeSeconds", "Seconds", age)
    metrics.add_metadata("api_calls", dict(api_calls))


class CollectorFunction:
    """A collector function's state across warm invocations: clients, caches, config, Redis connection.

    ``clock`` and ``sleep`` go to its :class:`~tidegauge.sources.collector.Collector` (tests pass fakes).
    """

    def __init__(
        self,
        kind: Kind,
        *,
        metrics: MetricsSink,
        tracer: Annotator | None = None,
        environ: Mapping[str, str] | None = None,
        factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kind = kind
        self.metrics = metrics
        self.tracer = tracer
        self.environ = os.environ if environ is None else environ
        self.factory = factory or ClientFactory()
        self.collector = Collector(self.factory, clock=clock, sleep=sleep)
        self._clock = clock
        self._ssm: SSMProvider | None = None
        self._secrets: SecretsProvider | None = None
        self._config: tuple[str, Config] | None = None
        self._store: tuple[ConnectionSettings, int, Store] | None = None

    def handle(self, event: Any, context: InvocationContext) -> dict[str, Any]:
        """Collect what ``event`` asks for; raises CollectionError (after counting it) when it cannot."""
        calls_before = self.factory.counter.snapshot()
        try:
            trigger = parse_event(event)
            if self.tracer is not None:
                self.tracer.put_annotation("trigger", trigger.kind)
            config = self.load_config()
            return self._collect(trigger, config, context, calls_before)
        except CollectionError as error:
            self.metrics.add_metric("CollectionErrors", "Count", 1)
            logger.error("collection failed: %s", error)
            raise

    def _collect(
        self, trigger: Trigger, config: Config, context: InvocationContext, calls_before: Any
    ) -> dict[str, Any]:
        own = [source for source in config.sources if source.kind == self.kind]
        if not own:
            # Nothing of this kind is configured: say so every invocation, so the no-samples alarm
            # (missing data is breaching) tells "nothing to collect" from "not collecting".
            self.metrics.add_metric(IDLE_HEARTBEAT_METRIC, "Count", 1)
        selection = select_sources(
            trigger,
            own,
            configured_names=[source.name for source in config.sources],
            known_queues=self.collector.known_queue_names,
        )
        summary: dict[str, Any] = {
            "trigger": trigger.description,
            "unknown_sources": list(selection.unknown_names),
        }
        if selection.unknown_names:
            logger.error("event names unknown sources: %s", ", ".join(selection.unknown_names))
            self.metrics.add_metric("CollectionErrors", "Count", len(selection.unknown_names))
        if not selection.sources:
            log = logger.warning if own else logger.info
            log("nothing to collect: no %s source matches %s", self.kind, trigger.description)
            return {**summary, "ok": not selection.unknown_names, "sources": [], "samples_written": 0}
        store = self.store(config)
        chain = self.tick_chain(store, config)
        handoff = self._hand_on(trigger, chain)
        if handoff is not None:
            summary["tick"] = handoff.summary()
            if handoff.action in ("dropped", "alive"):
                # dropped: not this chain's tick; alive: the chain samples every interval, so a round
                # of the schedule's own would only repeat one of its rounds
                if handoff.action == "dropped":
                    self.metrics.add_metric(TICKS_DROPPED_METRIC, "Count", 1)
                self.metrics.add_metric("SamplingRounds", "Count", 0)
                api_calls = self.factory.counter.snapshot().minus(calls_before).totals
                return {**summary, "ok": True, "sources": [], "samples_written": 0, "api_calls": api_calls}
        result = self.collector.collect(
            store,
            config,
            selection.sources,
            remaining_time_ms=context.get_remaining_time_in_millis,
            # with a tick chain every invocation samples once: the chain, not a sleep, paces the rounds
            single_round=trigger.single_round or chain is not None,
            force=trigger.forced,
            caller_account=account_of_arn(context.invoked_function_arn),
        )
        api_calls = self.factory.counter.snapshot().minus(calls_before).totals
        record_metrics(self.metrics, result, api_calls)
        for status in result.statuses:
            if not status.ok:
                logger.warning(
                    "source %s: %d series failed: %s", status.source, status.series_failed, status.errors
                )
        summary.update(result.summary())
        summary["api_calls"] = dict(api_calls)
        return summary

    def tick_chain(self, store: Store, config: Config) -> TickChain | None:
        """The tick chain over ``TIDEGAUGE_TICK_QUEUE_URL``, or None when the variable is not set."""
        url = self.environ.get(environment.TICK_QUEUE_URL, "")
        if not url:
            return None
        queue = cast(TickQueue, self.factory.client("sqs", None))
        return TickChain(
            store,
            queue,
            url,
            kind=self.kind,
            interval_seconds=config.sampling.interval_seconds,
            clock=self._clock,
        )

    def _hand_on(self, trigger: Trigger, chain: TickChain | None) -> Handoff | None:
        """A tick hands the chain on (or is dropped); the schedule restarts a broken chain.

        A failed SendMessage is counted and logged, and the invocation still samples: the schedule
        restarts the chain within a minute or two.
        """
        if trigger.kind == "tick" and chain is None:
            raise CollectionError(
                f"a tick message arrived but {environment.TICK_QUEUE_URL} is not set: set it to the tick "
                "queue's URL, or remove the queue's event source mapping"
            )
        if chain is None or trigger.kind not in ("tick", "schedule"):
            return None
        try:
            if trigger.kind == "tick":
                return chain.accept(trigger.tick_tokens)
            return chain.restart_if_broken()
        except StoreError as error:
            raise CollectionError(f"cannot keep the tick chain in Redis: {error}") from error
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            # SendMessage failed (denied, throttled, unreachable): sampling goes on
            logger.error("cannot send the next tick to %s: %s", chain.queue_url, error)
            self.metrics.add_metric("CollectionErrors", "Count", 1)
            return Handoff("send_failed")

    def load_config(self) -> Config:
        """The config in the SSM parameter ``TIDEGAUGE_CONFIG_PARAMETER`` names (cached; parsed on change)."""
        name = self.environ.get(environment.CONFIG_PARAMETER, "")
        if not name:
            raise CollectionError(
                f"{environment.CONFIG_PARAMETER} is not set: set it to the name of the SSM parameter "
                "that holds the tidegauge configuration"
            )
        try:
            text = _as_text(self._ssm_provider().get(name, max_age=CONFIG_MAX_AGE_SECONDS, decrypt=True))
        except Exception as error:  # Powertools wraps every SSM failure; the message names the cause
            raise CollectionError(f"cannot read the config parameter {name}: {error}") from error
        if self._config is not None and self._config[0] == text:
            return self._config[1]
        try:
            config = parse_config(text, origin=f"ssm:{name}", environ=self.environ)
        except ConfigError as error:
            raise CollectionError(f"invalid configuration:\n{error}") from error
        self._config = (text, config)
        return config

    def redis_secret(self, config: Config) -> str | None:
        """The Redis AUTH secret: ``TIDEGAUGE_REDIS_SECRET`` if set, else ``redis.password_secret``."""
        secret_id = self.environ.get(environment.REDIS_SECRET) or config.redis.password_secret
        if not secret_id:
            return None
        try:
            return _as_text(self._secrets_provider().get(secret_id, max_age=SECRET_MAX_AGE_SECONDS))
        except Exception as error:  # Powertools wraps every Secrets Manager failure
            raise CollectionError(f"cannot read the Redis secret {secret_id}: {error}") from error

    def store(self, config: Config) -> Store:
        """A connected store, reused while the settings stay the same."""
        try:
            settings = connection_settings(
                config.redis, secret=self.redis_secret(config), environ=self.environ
            )
        except SecretFormatError as error:
            raise CollectionError(str(error)) from error
        history = config.redis.history_length
        if self._store is not None and self._store[:2] == (settings, history):
            return self._store[2]
        if self._store is not None:
            self._store[2].close()
        try:
            store = Store.connect(settings, history_length=history)
        except StoreError as error:
            raise CollectionError(
                f"cannot connect to Redis at {config.redis.redacted_url}: {error}"
            ) from error
        self._store = (settings, history, store)
        return store

    def _ssm_provider(self) -> SSMProvider:
        if self._ssm is None:
            self._ssm = SSMProvider(boto3_client=self.factory.client("ssm", None))
        return self._ssm

    def _secrets_provider(self) -> SecretsProvider:
        if self._secrets is None:
            self._secrets = SecretsProvider(boto3_client=self.factory.client("secretsmanager", None))
        return self._secrets


def _as_text(value: str | bytes | dict[str, Any] | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise CollectionError(f"expected a text value, got {type(value).__name__}")
    return value
