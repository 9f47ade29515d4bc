"""The API for news sites: submit articles, follow jobs, read articles (`/v1`)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Callable

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute

from pipeline import safe_json
from worker.api.dependencies import ApiServices, get_services, get_store, require_token
from worker.api.schemas import (
    ERROR_RESPONSES,
    ArticleOut,
    ArticlesBody,
    JobOut,
    RejectedItem,
    SubmitResponse,
    SubmittedJob,
    job_document,
)
from worker.store import FINISHED
from worker.submission import Item, Rejection, SubmissionReport, Submitter, submit_items

log = logging.getLogger("worker.api")


class SafeJSONRequest(Request):
    """A request whose JSON body is decoded with its nesting bounded (pipeline.safe_json):
    a deeply nested body is a 422 like any other bad JSON, never a RecursionError."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = safe_json.loads(await self.body())
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPException(422, detail=[{"loc": ["body"], "msg": f"invalid JSON: {exc}",
                                                  "type": "json_invalid"}]) from None
        return self._json


class SafeJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(SafeJSONRequest(request.scope, request.receive))

        return route_handler


router = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=ERROR_RESPONSES,
                   route_class=SafeJSONRoute)


def _loc(index: int | None, field: str) -> list[str | int]:
    where: list[str | int] = ["body"] if index is None else ["body", index]
    return [*where, *(int(p) if p.isdigit() else p for p in field.split("."))]


def _unprocessable(msg: str, type_: str = "value_error") -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body"], "msg": msg, "type": type_}])


@router.post(
    "/articles", status_code=202, response_model=SubmitResponse, tags=["articles"],
    responses={413: {"description": "Body over the size limit"},
               422: {"description": "No valid article: `detail` lists each field at fault, with its index in a list"}},
)
def post_articles(body: Annotated[ArticlesBody, Body(description="An article, or a list of them")], services: ApiServices = Depends(get_services)) -> SubmitResponse:
    """Submit one article or a list; each valid one becomes a job on the `live` queue.

    In a list, invalid items are reported in `rejected` (index and field) and the valid ones
    are accepted; a request with no valid article at all is a 422."""
    from worker.queues import LIVE

    settings = services.settings
    single = isinstance(body, dict)
    if not single and not isinstance(body, list):
        raise _unprocessable(f"expected an article object or a list of them (got {type(body).__name__})", "type_error")
    raw = [body] if single else body
    if not raw:
        raise _unprocessable("an empty list: send at least one article")
    if len(raw) > settings.api_max_articles:
        raise _unprocessable(f"at most {settings.api_max_articles} articles per request (got {len(raw)})")
    report = SubmissionReport()
    items = [Item(i, data) for i, data in enumerate(raw)]
    services.ensure_schema()
    store = services.store
    with Submitter(store, services.celery_app, LIVE) as submitter:
        submit_items(submitter, items, settings.limits, report)
    rejected = [_rejected(r, single) for r in report.rejected]
    if rejected:
        services.metrics.submitted.labels("rejected").inc(len(rejected))
        log.info("%d article(s) rejected", len(rejected), extra={"rejected": len(rejected)})
    if not report.items:
        raise HTTPException(422, detail=[{"loc": r.loc, "msg": r.msg, "type": r.type} for r in rejected])
    jobs = []
    for item in report.items:
        sub, article = item.submission, item.article
        outcome = "duplicate" if sub.duplicate else "accepted"
        services.metrics.submitted.labels(outcome).inc()
        log.info("article %s", outcome, extra={"job_id": sub.job_id, "article_id": article.key,
                                                "queue": LIVE, "duplicate": sub.duplicate, "stage": "ingest"})
        jobs.append(SubmittedJob(index=item.position, job_id=sub.job_id, article_id=article.key,
                                 external_id=article.id, duplicate=sub.duplicate, status_url=f"/v1/jobs/{sub.job_id}"))
    return SubmitResponse(accepted=report.accepted, duplicates=report.duplicates, rejected=rejected, jobs=jobs)


def _rejected(r: Rejection, single: bool) -> RejectedItem:
    return RejectedItem(index=r.position, field=r.field, loc=_loc(None if single else r.position, r.field),
                        msg=r.error)


def job_out(store: Any, job: Any, article: Any) -> JobOut:
    return job_document(job, article, store.result(job.id) if job.status in FINISHED else None)


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses={404: {"description": "No such job"}})
def get_job(job_id: str, store: Any = Depends(get_store)) -> JobOut:
    """A job's status; with its result once done, partial or failed."""
    job = store.job(job_id)
    if job is None:
        raise HTTPException(404, detail=f"no job {job_id!r}")
    found = store.find_articles(job.article_key)
    return job_out(store, job, found[0][0] if found else None)


@router.get("/articles/{article_id:path}", response_model=ArticleOut, tags=["articles"],
            responses={404: {"description": "No such article"}})
def get_article(article_id: str, store: Any = Depends(get_store)) -> ArticleOut:
    """An article by its id (the key in job results) or by the external id it was sent with
    (which may contain `/`); for an external id sent with several articles, the newest."""
    found = store.find_articles(article_id)
    if not found:
        raise HTTPException(404, detail=f"no article with id or external id {article_id!r}")
    article, job = found[0]
    return ArticleOut(
        article_id=article.key, external_id=article.external_id, title=article.title, url=article.url,
        source_lang=article.source_lang, source_lang_confidence=article.source_lang_confidence,
        cleaned_text=article.cleaned_text, created_at=article.created_at,
        job=job_out(store, job, article), other_article_ids=[a.key for a, _ in found[1:]],
    )
