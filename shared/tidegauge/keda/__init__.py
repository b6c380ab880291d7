"""A KEDA external scaler (gRPC): KEDA keeps the external metrics slot and reads tidegauge's store.

``tidegauge serve --keda-scaler-port PORT`` serves KEDA's ``externalscaler.ExternalScaler`` service
(trigger type ``external`` or ``external-push``) next to the aggregated API, from the same provider:
same store, same staleness, fallback and exposure rules. Needs the ``tidegauge[keda]`` extra.

``externalscaler_pb2.py`` is generated from ``externalscaler.proto`` by ``make proto`` and checked in:
grpcio-tools (protoc) is then a build-time tool of the developer who changes the .proto, never a runtime
or CI dependency.
"""
