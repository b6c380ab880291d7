"""Collectors: sample SQS queue depth and CloudWatch metrics into the store.

- :mod:`.aws` — boto3 clients (region, assumed role, adaptive retries) and the API-call counter
- :mod:`.sqs`, :mod:`.cloudwatch` — pure collection logic over injected clients
- :mod:`.sampling` — the sub-minute / adaptive sampling loop
- :mod:`.runner` — one invocation: collect, write, retire, record status
- :mod:`.events` — which sources an EventBridge event asks for
- :mod:`.lambda_support` — config from SSM, Redis AUTH from Secrets Manager, EMF
- :mod:`.command` — ``tidegauge collect --once | --loop`` outside Lambda
"""
