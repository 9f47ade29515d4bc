"""Results to the news site: signed webhooks, per-article callbacks and a Celery result queue.

Events are written to an outbox in the same transaction as the job's result (the store's
finish and fail paths call `outbox.record_event`); `dispatcher.Dispatcher` (`babelwire
webhooks dispatch`, a process of its own) delivers them at least once.
"""
