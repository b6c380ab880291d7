"""Collectors: sample SQS queue depth and CloudWatch metrics into the store.

- :mod:`.aws` — boto3 clients (region, assumed role, adaptive retries) and the API-call counter
- :mod:`.sqs`, :mod:`.cloudwatch` — pure collection logic over injected clients
- :mod:`.rounds` — one sampling round per source kind (``SqsSampler``, ``CloudWatchSampler``)
- :mod:`.tally` — what a source did in a round, and summed over an invocation (``SourceTally``)
- :mod:`.sampling` — when to take another round: the sub-minute grid, quiet detection
- :mod:`.ticks` — the SQS tick chain: one round per invocation, the next tick sent with a delay
- :mod:`.tracing` — the X-Ray tracer, built only when tracing is on
- :mod:`.invocation` — one invocation (``Invocation``): rounds, writes, retirement, status and cost
- :mod:`.collector` — ``Collector``: what a process keeps across invocations, and runs each one
- :mod:`.events` — which sources an EventBridge event asks for
- :mod:`.function` — ``CollectorFunction``, the Lambda-facing part: config from SSM, Redis AUTH from
  Secrets Manager, EMF metrics (``functions/*/app.py`` are thin handlers over it)
- :mod:`.collect` — ``tidegauge collect --once | --loop`` outside Lambda
"""
