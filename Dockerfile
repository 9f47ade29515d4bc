# babelwire: one image for the worker, the API and the CLI (`docker compose run --rm worker ...`).
# Models are not baked in: they live on the /models volume (`babelwire models pull NAME`).
FROM python:3.11-slim

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
# The `convert` extra (torch, transformers) is only needed by `models pull/convert`;
# build with --build-arg EXTRAS=convert to include it.
ARG EXTRAS=""
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
 && useradd --create-home --uid 10001 babelwire \
 && mkdir -p /models /data \
 && chown babelwire /models /data

USER babelwire
WORKDIR /data
ENTRYPOINT ["babelwire"]
CMD ["worker"]
