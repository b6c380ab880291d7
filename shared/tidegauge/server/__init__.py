"""The in-cluster aggregated API server: External and Custom Metrics for the HPA through the aggregator.

Modules, in the order a request meets them: :mod:`.listener` (accepts connections, the TLS handshake
with :mod:`.tls`'s current context, the connection and header bounds), :mod:`.routing` (path -> route),
:mod:`.app` (the handler, one deadline per request, the one place where errors become ``Status``
answers, the response :mod:`.cache`), :mod:`.authn` and :mod:`.authz` (who is asking, may they),
:mod:`.delegate` (external metrics tidegauge does not hold, forwarded to another adapter),
:mod:`.signals` (windows, keep-alive, last known good and :mod:`.derived` metrics, over :mod:`.windows`
and :mod:`.histories`) around :mod:`.provider` (store -> API values, staleness, exposure, fallbacks) over
:mod:`.backend` (Redis, connected once it answers, its health in :mod:`.health`), :mod:`.custom` and
:mod:`.custom_answer` (the Custom Metrics API; pods from :mod:`.pods`' list and watch through
:mod:`.kube`), :mod:`.discovery` and :mod:`.openapi`, :mod:`.telemetry` (``/metrics``). :mod:`.runner`
wires them up (and KEDA's gRPC scaler, :mod:`tidegauge.keda`, when asked); :mod:`.command` is
``tidegauge serve``.
"""
