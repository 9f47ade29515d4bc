"""Everything CTranslate2: catalogue, model store, manifests, tokenizers, loading and caching,
translation and summarization engines, download/convert/import.

Import nothing from celery, sqlalchemy or redis here: shared services (a translation memory)
are handed in from `worker/` behind the small interfaces defined in this package.
"""
