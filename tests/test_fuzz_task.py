"""Fuzzing the task entry (`babelwire.process_article`) with generated arguments, run in-process
against a real PostgreSQL store (the strictest about what it stores) and the toy models.

Whatever a message carries, the task itself never fails: a valid article is processed (done
or partial, or failed for a reason the pipeline states — never a pipeline crash), an invalid
one with an object for its article becomes a stored failed job that says why, anything less
is dropped — and nothing is retried."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from pipeline.article import validate_article
from pipeline.exceptions import ArticleError
from tests.conftest import create_pg_database, drop_pg_database
from tests.fuzz_strategies import article_like, articles, json_values, texts

pytestmark = pytest.mark.postgres

_ids = itertools.count()

# kwargs: mostly {"article": ...}, sometimes with other names (Python keywords, "self", empty)
kwargs_strategy = st.fixed_dictionaries(
    {}, optional={"article": articles | article_like}
) | st.dictionaries(texts | st.sampled_from(["self", "article", "args", "kwargs", "", "class"]), json_values,
                    max_size=3)
args_strategy = st.just([]) | st.lists(article_like, max_size=2)


@pytest.fixture(scope="module")
def bound_task(tmp_path_factory: pytest.TempPathFactory, toy_models_dir_module: Path) -> Iterator[tuple[Any, Any, Any]]:
    from tasks.process import ArticleTask, TaskContext, process_article
    from worker.celery_app import BROKER_TRANSIENT_ERRORS, create_app
    from worker.config import Settings
    from worker.runtime import build_engines
    from worker.store import TRANSIENT_DB_ERRORS, Store

    url = create_pg_database("bw_fuzz_task")
    settings = Settings(database_url=url, models_dir=toy_models_dir_module, targets=("qaa", "qab"),
                        translation_memory=False, threads=1)
    app = create_app(settings)
    store = Store(url)
    store.migrate()
    context = TaskContext(store=store, engines=build_engines(settings), limits=settings.limits,
                          transient_errors=BROKER_TRANSIENT_ERRORS + TRANSIENT_DB_ERRORS, retry_max_delay_s=1)
    ArticleTask.bind_context(lambda: context)
    try:
        yield app.tasks[process_article.name], store, settings.limits
    finally:
        ArticleTask.bind_context(None)
        store.close()
        drop_pg_database(url)


@pytest.fixture(scope="module")
def toy_models_dir_module() -> Path:
    from tests.conftest import TOY_MODELS_DIR

    if not (TOY_MODELS_DIR / "toy-en-qaa" / "babelwire.json").exists():
        pytest.fail(f"toy models missing in {TOY_MODELS_DIR}: run python tests/fixtures/build_models.py")
    return TOY_MODELS_DIR


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(args=args_strategy, kwargs=kwargs_strategy)
# what PostgreSQL or UTF-8 cannot store, in an article that fails validation (found by this test)
@example(args=[], kwargs={"article": {"text": "Word \ud800"}})
@example(args=[], kwargs={"article": {"text": "Word", "\ud800": 1}})
@example(args=[], kwargs={"article": {"text": 5, "title": "NUL\x00", "id": "\x00"}})
@example(args=[], kwargs={"article": {"text": "Word"}, "self": None})
def test_any_arguments_end_processed_failed_with_a_reason_or_dropped(bound_task: tuple[Any, Any, Any],
                                                                     args: list[Any], kwargs: dict[str, Any]) -> None:
    task, store, limits = bound_task
    task_id = f"fuzz-{next(_ids)}"
    outcome = task.apply(args=args, kwargs=kwargs, task_id=task_id)
    assert outcome.state == "SUCCESS", outcome.traceback
    result = outcome.result
    event(f"status {result['status']}")
    job = store.job(result["job_id"]) if result.get("job_id") else None

    article = kwargs.get("article")
    only_an_article = not args and set(kwargs) <= {"article"}
    try:
        valid = validate_article(article, limits) if only_an_article else None
    except ArticleError:
        valid = None
    if valid is not None:
        assert job is not None, result
        # processed; or refused by the pipeline for a reason it states (e.g. nothing left after
        # cleaning) — but never a crash of the pipeline
        assert job.status in ("done", "partial") or (job.status == "failed" and job.error), (result, job.error)
        assert not (job.error or "").startswith(("pipeline error", "gave up")), job.error
    # what identifies the failed job: the article, else a lone positional argument
    elif isinstance(article if article is not None or len(args) != 1 else args[0], dict):
        assert result["status"] == "failed" and result["error"], result
        assert job is not None and job.status == "failed" and job.error
    else:
        assert result["status"] == "dropped" and result["error"] and job is None, result
