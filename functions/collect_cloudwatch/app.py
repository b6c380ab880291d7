"""Lambda handler: fetch CloudWatch metrics into Redis (every minute; on alarm / tidegauge.collect events).

Environment: TIDEGAUGE_CONFIG_PARAMETER (SSM parameter with the config), TIDEGAUGE_REDIS_URL (optional,
beats redis.url), TIDEGAUGE_REDIS_SECRET (optional Secrets Manager AUTH token), POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, LOG_LEVEL. See docs/collectors.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from tidegauge.sources.function import CollectorFunction

logger = Logger()
metrics = Metrics()
# No auto-patching: API calls on worker threads have no X-Ray context and thousands of them would
# overflow the segment; the handler segment shows the invocation, annotated with its trigger.
tracer = Tracer(auto_patch=False)
copy_config_to_registered_loggers(source_logger=logger, include={"tidegauge"})
function = CollectorFunction("cloudwatch", metrics=metrics, tracer=tracer)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return function.handle(event, context)
