# babelwire: one image for the worker, the API and the CLI (`docker compose run --rm worker ...`).
# Models are not baked in: they live on the /models volume (`babelwire models pull NAME`).
#
# Targets: `runtime` (the default, the last stage) runs everything but cannot convert models;
# `convert` adds the `convert` extra (torch, transformers) that `models pull` and `models
# convert` need: `docker build --target convert -t babelwire:convert .`, or in compose
# `docker compose run --rm convert models pull opus-mt-en-de`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BABELWIRE_MODELS_DIR=/models

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY models ./models
COPY tasks ./tasks
COPY worker ./worker
COPY benchmarks ./benchmarks
RUN pip install . \
 && useradd --create-home --uid 10001 babelwire \
 && mkdir -p /models /data \
 && chown babelwire /models /data

USER babelwire
WORKDIR /data
ENTRYPOINT ["babelwire"]
CMD ["worker"]

# the runtime image + the `convert` extra
FROM base AS convert
USER root
RUN pip install "/app[convert]"
USER babelwire

FROM base AS runtime
