"""The service around the pipeline: configuration, Celery app, SQL store, CLI, HTTP API."""
