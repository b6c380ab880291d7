"""Lambda handler: fetch CloudWatch metrics into Redis (every minute; on alarm / tidegauge.collect events).

Environment: TIDEGAUGE_CONFIG_PARAMETER (SSM parameter with the config), TIDEGAUGE_REDIS_URL (optional,
beats redis.url), TIDEGAUGE_REDIS_SECRET (optional Secrets Manager AUTH token), POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_TRACE_DISABLED, LOG_LEVEL. See docs/collectors.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidegauge.sources.function import CollectorFunction
from tidegauge.sources.tracing import optional_tracer, traced

logger = Logger()
metrics = Metrics()
# X-Ray only when the template enables it: building a Tracer imports aws_xray_sdk (~100 ms cold).
tracer = optional_tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"tidegauge"})
function = CollectorFunction("cloudwatch", metrics=metrics, tracer=tracer)


@logger.inject_lambda_context
@traced(tracer)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle(event, context)
