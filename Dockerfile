# canaryflow's image (the operator, and `canaryflow gitops-controller`): `docker build -t canaryflow .`
# Two stages: the first builds a virtualenv with canaryflow and its `kube` extra (kopf, kubernetes_asyncio);
# the second copies only that virtualenv onto a fresh slim Python, so no compiler, pip cache or source tree
# ships. The process runs as uid 10001 and never writes outside /tmp (the Deployment mounts the root
# filesystem read-only and an emptyDir at /tmp).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/canaryflow
WORKDIR /src
# README.md is the package's long description (pyproject's readme), so the build needs it.
COPY pyproject.toml README.md ./
COPY src ./src
# Bytecode compiled now: the root filesystem is read-only at run time.
RUN /opt/canaryflow/bin/pip install ".[kube]" \
    && /opt/canaryflow/bin/python -m compileall -q /opt/canaryflow

# kubectl for `kubectl kustomize` (the GitOps controller builds Kustomizations with it), checked against the
# checksum the Kubernetes release publishes.
FROM python:3.11-slim AS kubectl
ARG KUBECTL_VERSION=v1.30.6
ARG TARGETARCH=amd64
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256 /kubectl.sha256
RUN echo "$(cat /kubectl.sha256)  /kubectl" | sha256sum -c - && chmod 0755 /kubectl

FROM python:3.11-slim
LABEL org.opencontainers.image.title="canaryflow" \
      org.opencontainers.image.description="Progressive delivery operator, Flagger-compatible" \
      org.opencontainers.image.licenses="Apache-2.0"
# git and ssh: the GitOps controller fetches and pushes with the git CLI (credentials never on its command line).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
RUN groupadd --system --gid 10001 canaryflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin canaryflow
COPY --from=build /opt/canaryflow /opt/canaryflow
ENV PATH="/opt/canaryflow/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["canaryflow", "operator"]
