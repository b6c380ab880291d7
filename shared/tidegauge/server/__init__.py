"""The in-cluster aggregated API server: External Metrics for the HPA through the kube-apiserver aggregator.

Modules, in the order a request meets them: :mod:`.tls` (serving certificate, reloaded on change),
:mod:`.app` (routes, and the one place where errors become ``Status`` answers), :mod:`.authn` and
:mod:`.authz` (who is asking, may they), :mod:`.provider` (store -> API values, staleness, exposure),
:mod:`.responses` (JSON bodies). :mod:`.runner` wires them up; :mod:`.command` is ``tidegauge serve``.
"""
