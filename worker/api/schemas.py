"""Request and response models of the API (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainValidator

from pipeline import safe_json
from pipeline.article import Article


def _raw_items(value: Any) -> Any:
    """The body as JSON values, unvalidated: each item is checked by `validate_article` (with
    the configured limits, as everywhere else), so one bad item costs only itself."""
    if isinstance(value, (bytes, str)):  # a body sent without a JSON content type
        try:
            return safe_json.loads(value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    return value


# What the OpenAPI document shows (an article or a list of them) and what the route gets (the
# raw JSON: validation per item happens in the submission service).
ArticlesBody = Annotated[
    Any,
    PlainValidator(_raw_items, json_schema_input_type=Article | Annotated[list[Article], Field(min_length=1)]),
]


class SubmittedJob(BaseModel):
    index: int = Field(description="The article's position in the request (0 for a single article)")
    job_id: str
    article_id: str = Field(description="The article's key: a hash of its text and output options")
    external_id: str | None = None
    duplicate: bool = Field(description="The article was submitted before: this is its existing job")
    status_url: str


class RejectedItem(BaseModel):
    index: int = Field(description="The item's position in the request's list")
    field: str = Field(description="The field at fault (`article` for the item as a whole)")
    loc: list[str | int] = Field(description="Where, as in a 422 detail: body, index, field path")
    msg: str
    type: str = "value_error"


class SubmitResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[RejectedItem] = Field(
        default_factory=list, description="Invalid items of a list (the valid ones were accepted)"
    )
    jobs: list[SubmittedJob]


class JobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued, running, done, partial or failed")
    queue: str
    attempts: int
    article_id: str
    external_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = Field(None, description="The result (docs/contracts.md), once the job is finished")


def job_document(job: Any, article: Any, result: Any) -> JobOut:
    """A job row (and its article and Result, when known) as `GET /v1/jobs/{id}` returns it;
    the result is included once the job is finished."""
    from worker.store import FINISHED

    finished = result is not None and job.status in FINISHED
    return JobOut(
        job_id=job.id, status=job.status, queue=job.queue, attempts=job.attempts,
        article_id=job.article_key, external_id=article.external_id if article is not None else None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        result=result.to_dict() if finished else None,
    )


class ArticleOut(BaseModel):
    article_id: str
    external_id: str | None = None
    title: str | None = None
    url: str | None = None
    source_lang: str | None = None
    source_lang_confidence: float | None = None
    cleaned_text: str | None = Field(None, description="The body as the pipeline read it (after processing)")
    created_at: datetime
    job: JobOut
    other_article_ids: list[str] = Field(
        default_factory=list, description="Other articles with the same external id, newest first"
    )


class Health(BaseModel):
    status: str
    broker: str
    database: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token (tokens are configured)"},
    403: {"description": "Wrong bearer token"},
    503: {"description": "Broker or database unavailable (Retry-After)"},
}
