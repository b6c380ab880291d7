# syntax=docker/dockerfile:1.7
# The tidegauge server image (the in-cluster aggregated API server).
#   docker build -t tidegauge-server:0.1.0 .
# Multi-architecture: docker buildx build --platform linux/amd64,linux/arm64 ...
# For fully reproducible builds, pin the base image by digest as well:
#   --build-arg PYTHON_IMAGE=python:3.12.11-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

# --- builder: wheels only, no compiler (every dependency ships a binary wheel) ---------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY docker/requirements-server.txt docker/requirements-server.txt
RUN python -m pip wheel --only-binary=:all: --wheel-dir /wheels -r docker/requirements-server.txt
COPY pyproject.toml README.md ./
COPY shared/tidegauge shared/tidegauge
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

# --- final: the interpreter, the wheels installed, a non-root user -----------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="tidegauge-server" \
      org.opencontainers.image.description="Kubernetes external metrics API server reading tidegauge samples from Redis" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY docker/requirements-server.txt /tmp/requirements-server.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels -r /tmp/requirements-server.txt /wheels/tidegauge-*.whl \
    && python -m pip uninstall --yes pip \
    && rm /tmp/requirements-server.txt \
    && groupadd --system --gid 65532 tidegauge \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tidegauge
USER 65532:65532
WORKDIR /tmp
# 6443: the aggregated API (HTTPS); 9090: /metrics and health; 9443: KEDA's external scaler (gRPC over
# TLS, served by this image when --keda-scaler-port is set, as the keda-scaler overlay does).
EXPOSE 6443 9090 9443
ENTRYPOINT ["tidegauge"]
CMD ["serve"]
