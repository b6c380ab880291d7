"""The in-cluster aggregated API server: External Metrics for the HPA through the kube-apiserver aggregator.

Modules, in the order a request meets them: :mod:`.listener` (accepts connections, the TLS handshake
with :mod:`.tls`'s current context, the connection and header bounds), :mod:`.routing` (path -> route),
:mod:`.app` (the handler, one deadline per request, the one place where errors become ``Status``
answers, the response :mod:`.cache`), :mod:`.authn` and :mod:`.authz` (who is asking, may they),
:mod:`.provider` (store -> API values, staleness, exposure, fallbacks) over :mod:`.backend` (Redis,
connected once it answers, its health in :mod:`.health`), :mod:`.discovery` and :mod:`.openapi`,
:mod:`.telemetry` (``/metrics``). :mod:`.runner` wires them up; :mod:`.command` is ``tidegauge serve``.
"""
