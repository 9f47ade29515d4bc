"""The HTTP API for news sites (SPEC §3.5) and the editors' review pages.

    POST /v1/articles          one article or a list → 202 with a job per article (queue `live`)
    GET  /v1/jobs/{id}         a job's status, and its result (SPEC §3.2) once finished
    GET  /v1/articles/{id}     an article by its id (key) or by the site's external id
    GET  /healthz              broker and database reachable: 200, else 503
    GET  /metrics              Prometheus (worker.metrics)
    GET  /openapi.json, /docs  the schema
    GET  /, /jobs              review: recent jobs, filtered by status
    GET  /articles/{id}        review: the cleaned article, its title and summary in every language

Choices:
- Validation is `pipeline.article.validate_article` with the configured limits, the same as the
  CLI and the task. A request is all or nothing: one invalid article in a list rejects the
  request (422, every error listed with its index) and nothing is enqueued.
- Submission is the CLI's (`worker.cli.queue_cmds.Submitter`): job rows first, then the
  messages, so a resubmitted article is its existing job (`duplicate: true`, 202 as well).
  Broker or database down → 503 with Retry-After; rows written whose message did not go out
  are sent by the next submission of the same article.
- Auth: when `BABELWIRE_API_TOKENS` is set, `/v1/*` needs `Authorization: Bearer <token>`
  (401 without, 403 with a wrong one; compared in constant time). The review pages take the
  same header or a cookie set by `/login` (a form: browsers cannot send bearer headers).
  `/healthz` and `/metrics` stay open: load balancers and Prometheus probe them, and they
  carry no article content — keep them off the public internet at the proxy.
- Size: a body over `BABELWIRE_API_MAX_BODY_BYTES` is refused with 413 before it is parsed —
  from its Content-Length, or by counting the bytes of a chunked body as they arrive.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from pipeline.article import Article, ArticleError, validate_article
from worker import logging as json_logs
from worker.config import Settings, get_settings
from worker.metrics import ApiMetrics, api_registry

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TOKEN_COOKIE = "babelwire_token"
MAX_ID_CHARS = 200
QUIET_ROUTES = frozenset({"/healthz", "/metrics"})  # probed every few seconds: logged at DEBUG
Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


# --- response schemas (for clients and the OpenAPI document) ----------------------------------


class SubmittedJob(BaseModel):
    job_id: str
    article_id: str = Field(description="The article's key: a hash of its text and output options")
    external_id: str | None = None
    duplicate: bool = Field(description="The article was submitted before: this is its existing job")
    status_url: str


class SubmitResponse(BaseModel):
    accepted: int
    duplicates: int
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
    result: dict[str, Any] | None = Field(None, description="SPEC §3.2, once the job is finished")


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
}


# --- services ------------------------------------------------------------------------------------


@dataclass
class ApiServices:
    """What the app's routes use, opened once per app."""

    settings: Settings
    store: Any  # worker.store.Store
    celery_app: Any
    redis: Any
    registry: Any
    metrics: ApiMetrics
    templates: jinja2.Environment
    _schema_ready: bool = False
    _schema_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings) -> "ApiServices":
        import redis

        from worker.celery_app import create_app as create_celery_app
        from worker.store import Store

        store = Store(settings.database_url)
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=5)
        registry, metrics = api_registry(client, store.counts)
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,  # every page shows text from outside: escape all of it
            undefined=jinja2.StrictUndefined,
        )
        return cls(settings, store, create_celery_app(settings), client, registry, metrics, templates)

    def ensure_schema(self) -> None:
        """Migrate once; a database that is down at start is migrated when it comes back."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                self.store.migrate()
                self._schema_ready = True

    def close(self) -> None:
        self.store.close()
        self.redis.close()


def _transient_errors() -> tuple[type[BaseException], ...]:
    from worker.celery_app import BROKER_TRANSIENT_ERRORS
    from worker.store import TRANSIENT_DB_ERRORS

    return BROKER_TRANSIENT_ERRORS + TRANSIENT_DB_ERRORS


def _unavailable(exc: BaseException) -> HTTPException:
    log.warning("service unavailable: %s: %s", type(exc).__name__, exc)
    return HTTPException(
        503, detail=f"broker or database unavailable ({type(exc).__name__}); retry later",
        headers={"Retry-After": "5"},
    )


# --- auth ----------------------------------------------------------------------------------------


def token_matches(given: str, tokens: tuple[str, ...]) -> bool:
    """Constant time in the token's content: every configured token is compared."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given.encode(), token.encode())
    return matched


bearer_scheme = HTTPBearer(auto_error=False, description="A token from BABELWIRE_API_TOKENS")


def _services(request: Request) -> ApiServices:
    return request.app.state.services


def require_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> None:
    tokens = _services(request).settings.api_tokens
    if not tokens:
        return
    if credentials is None:
        raise HTTPException(401, detail="missing bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    if not token_matches(credentials.credentials, tokens):
        raise HTTPException(403, detail="invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class _LoginNeeded(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def require_reviewer(request: Request) -> None:
    """The review pages: a bearer header (e.g. added by a proxy) or the login cookie."""
    tokens = _services(request).settings.api_tokens
    if not tokens:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE)
    if not given:
        raise _LoginNeeded(401, "")
    if not token_matches(given, tokens):
        raise _LoginNeeded(403, "That token is not valid.")


# --- body size -----------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over `max_bytes`: from Content-Length before anything is read, and by
    counting the bytes of a body without one (chunked) as the app reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, f"request body is {int(declared):,} bytes; the limit is {self.max_bytes:,}")
            return
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(send, f"request body is over the limit of {self.max_bytes:,} bytes")

    async def _refuse(self, send: Any, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class TelemetryMiddleware:
    """Per request: a request id (X-Request-ID), a JSON log line, and the HTTP metrics."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)

        token = json_logs.bind_context(request_id=request_id, stage="api")
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_label(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.request_seconds.labels(scope["method"], route).observe(seconds)
            log.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "%s %s %d", scope["method"], route, status,
                extra={"method": scope["method"], "route": route, "status_code": status,
                       "duration_ms": round(seconds * 1000)},
            )
            json_logs.unbind_context(token)


def _route_label(scope: Scope) -> str:
    """The matched route's template (bounded label values: never a raw path with ids in it)."""
    route = getattr(scope.get("route"), "path", None)  # FastAPI routes
    if route:
        return route
    if scope.get("endpoint") is not None:  # Starlette routes FastAPI adds (/openapi.json, /docs): no parameters
        return scope["path"]
    return "unmatched"


# --- helpers -------------------------------------------------------------------------------------


def _loc(field_name: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in field_name.split(".")]


def _unprocessable(errors: list[dict[str, Any]]) -> HTTPException:
    return HTTPException(422, detail=errors)


def parse_articles(body: bytes, settings: Settings) -> list[Article]:
    """The request body → validated articles, or a 422 naming every bad field (with its index)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unprocessable([{"loc": ["body"], "msg": f"invalid JSON: {exc}", "type": "json_invalid"}]) from None
    single = isinstance(data, dict)
    if not single and not isinstance(data, list):
        raise _unprocessable([{"loc": ["body"], "type": "type_error",
                               "msg": f"expected an article object or a list of them (got {type(data).__name__})"}])
    items = [data] if single else data
    if not items:
        raise _unprocessable([{"loc": ["body"], "msg": "an empty list: send at least one article", "type": "value_error"}])
    if len(items) > settings.api_max_articles:
        raise _unprocessable([{"loc": ["body"], "type": "value_error",
                               "msg": f"at most {settings.api_max_articles} articles per request (got {len(items)})"}])
    articles: list[Article] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            articles.append(validate_article(item, settings.limits))
        except ArticleError as exc:
            where: list[str | int] = ["body"] if single else ["body", index]
            errors.append({"loc": [*where, *_loc(exc.field)], "msg": str(exc), "type": "value_error"})
    if errors:
        raise _unprocessable(errors)
    return articles


def submit_live(services: ApiServices, articles: list[Article]) -> list[Any]:
    """Job rows, then messages on `live`: the CLI's submission path (worker.cli.queue_cmds)."""
    from worker.celery_app import LIVE
    from worker.cli.queue_cmds import EnqueueReport, Submitter

    services.ensure_schema()
    submitter = Submitter(services.store, services.celery_app, LIVE)
    try:
        return submitter.submit(articles, EnqueueReport())
    finally:
        submitter.close()


def job_out(services: ApiServices, job: Any, article: Any) -> JobOut:
    from worker.store import FINISHED

    result = services.store.result(job.id) if job.status in FINISHED else None
    return JobOut(
        job_id=job.id, status=job.status, queue=job.queue, attempts=job.attempts,
        article_id=job.article_key, external_id=article.external_id if article is not None else None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        result=result.to_dict() if result is not None else None,
    )


def check_health(services: ApiServices) -> tuple[bool, Health]:
    broker = database = "ok"
    try:
        services.redis.ping()
    except Exception as exc:
        broker = f"unreachable: {type(exc).__name__}: {exc}"
    try:
        with services.store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        services.ensure_schema()
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}: {exc}"
    ok = broker == "ok" and database == "ok"
    return ok, Health(status="ok" if ok else "unavailable", broker=broker, database=database)


# --- review pages --------------------------------------------------------------------------------


@dataclass
class LanguageColumn:
    lang: str
    title: str | None
    summary: str | None
    model: str | None
    error: str | None
    is_source: bool


def language_columns(result: Any, targets: list[str]) -> tuple[list[LanguageColumn], dict[str, str]]:
    """One column per language: the source first, then the targets in the order asked, then any
    other language with text (the pivot summary). Errors not about a language come back apart."""
    source = result.source_lang
    order: dict[str, None] = {}
    for lang in [source, *targets, *result.title, *result.summary]:
        if lang:
            order.setdefault(lang, None)
    columns = []
    for lang in order:
        is_source = lang == source
        model = result.models.get("summary") if is_source else result.models.get(lang)
        columns.append(LanguageColumn(lang, result.title.get(lang), result.summary.get(lang), model,
                                      result.errors.get(lang), is_source))
    general = {k: v for k, v in result.errors.items() if k not in order}
    return columns, general


def _safe_href(url: str | None) -> str | None:
    """Only http(s) links: an article's url is outside input (no javascript: links)."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def _html(services: ApiServices, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    page = services.templates.get_template(template).render(auth=bool(services.settings.api_tokens), **context)
    return HTMLResponse(page, status_code=http_status, headers={
        # no scripts on these pages at all; the styles are inline
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    })


# --- the app -------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over the configured broker and database (nothing is connected until used)."""
    from worker.store import STATUSES

    settings = settings or get_settings()
    services = ApiServices.open(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(services.ensure_schema)
        except Exception as exc:  # /healthz says so; requests retry the migration
            log.error("database not ready at start: %s: %s", type(exc).__name__, exc)
        yield
        services.close()

    app = FastAPI(
        title="babelwire",
        version="1",
        summary="Multilingual summaries of news articles",
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(TelemetryMiddleware, metrics=services.metrics)  # outermost: sees the 413s too

    @app.exception_handler(_LoginNeeded)
    async def _login_page(request: Request, exc: _LoginNeeded) -> HTMLResponse:
        return _html(services, "login.html", http_status=exc.status, next=request.url.path, message=exc.message)

    # --- API ---

    @app.post(
        "/v1/articles", status_code=202, response_model=SubmitResponse, tags=["articles"],
        dependencies=[Depends(require_token)],
        responses={**ERROR_RESPONSES, 413: {"description": "Body over the size limit"},
                   422: {"description": "Invalid article(s): `detail` lists each field, with its index in a list"},
                   503: {"description": "Broker or database unavailable"}},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [{"$ref": "#/components/schemas/Article"},
                      {"type": "array", "items": {"$ref": "#/components/schemas/Article"},
                       "minItems": 1, "maxItems": settings.api_max_articles}]}}}}},
    )
    async def post_articles(request: Request) -> SubmitResponse:
        """Submit one article (SPEC §3.1) or a list; each becomes a job on the `live` queue."""
        body = await request.body()
        try:
            articles = parse_articles(body, settings)
        except HTTPException as exc:
            services.metrics.submitted.labels("rejected").inc()
            log.info("submission rejected: %d error(s)", len(exc.detail), extra={"rejected": len(exc.detail)})
            raise
        try:
            submissions = await run_in_threadpool(submit_live, services, articles)
        except _transient_errors() as exc:
            raise _unavailable(exc) from None
        jobs = []
        for article, sub in zip(articles, submissions):
            outcome = "duplicate" if sub.duplicate else "accepted"
            services.metrics.submitted.labels(outcome).inc()
            log.info("article %s", outcome, extra={"job_id": sub.job_id, "article_id": article.key,
                                                    "queue": "live", "duplicate": sub.duplicate, "stage": "ingest"})
            jobs.append(SubmittedJob(job_id=sub.job_id, article_id=article.key, external_id=article.id,
                                     duplicate=sub.duplicate, status_url=f"/v1/jobs/{sub.job_id}"))
        duplicates = sum(j.duplicate for j in jobs)
        return SubmitResponse(accepted=len(jobs) - duplicates, duplicates=duplicates, jobs=jobs)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], dependencies=[Depends(require_token)],
             responses={**ERROR_RESPONSES, 404: {"description": "No such job"}})
    def get_job(job_id: str) -> JobOut:
        """A job's status; with its result (SPEC §3.2) once done, partial or failed."""
        try:
            services.ensure_schema()
            job = services.store.job(job_id) if len(job_id) <= MAX_ID_CHARS else None
            if job is None:
                raise HTTPException(404, detail=f"no job {job_id!r}")
            found = services.store.find_articles(job.article_key)
            return job_out(services, job, found[0][0] if found else None)
        except _transient_errors() as exc:
            raise _unavailable(exc) from None

    @app.get("/v1/articles/{article_id}", response_model=ArticleOut, tags=["articles"],
             dependencies=[Depends(require_token)],
             responses={**ERROR_RESPONSES, 404: {"description": "No such article"}})
    def get_article(article_id: str) -> ArticleOut:
        """An article by its id (the key in job results) or by the external id it was sent with;
        for an external id sent with several articles, the newest."""
        try:
            services.ensure_schema()
            found = services.store.find_articles(article_id) if len(article_id) <= MAX_ID_CHARS else []
            if not found:
                raise HTTPException(404, detail=f"no article with id or external id {article_id!r}")
            article, job = found[0]
            return ArticleOut(
                article_id=article.key, external_id=article.external_id, title=article.title, url=article.url,
                source_lang=article.source_lang, source_lang_confidence=article.source_lang_confidence,
                cleaned_text=article.cleaned_text, created_at=article.created_at,
                job=job_out(services, job, article), other_article_ids=[a.key for a, _ in found[1:]],
            )
        except _transient_errors() as exc:
            raise _unavailable(exc) from None

    @app.get("/healthz", response_model=Health, tags=["operations"],
             responses={503: {"description": "Broker or database unreachable", "model": Health}})
    def healthz() -> JSONResponse:
        """Broker (Redis PING) and database (SELECT 1, schema current) reachable. Open (no token)."""
        ok, health = check_health(services)
        return JSONResponse(health.model_dump(), status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Prometheus metrics (names babelwire_*). Open (no token)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)

    # --- review pages (server-rendered, no scripts) ---

    @app.get("/", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(require_reviewer)])
    @app.get("/jobs", response_class=HTMLResponse, include_in_schema=False, dependencies=[Depends(require_reviewer)])
    def jobs_page(status: str | None = Query(None), limit: int = Query(50, ge=1, le=500)) -> HTMLResponse:
        if status is not None and status not in STATUSES:
            raise HTTPException(422, detail=f"status must be one of {', '.join(STATUSES)} (got {status!r})")
        try:
            services.ensure_schema()
            rows = services.store.recent_jobs(status, limit)
            counts = services.store.counts()
        except _transient_errors() as exc:
            raise _unavailable(exc) from None
        return _html(services, "jobs.html", rows=rows, counts=counts, statuses=STATUSES, status=status,
                     limit=limit, quote=quote)

    @app.get("/articles/{article_id}", response_class=HTMLResponse, include_in_schema=False,
             dependencies=[Depends(require_reviewer)])
    def article_page(article_id: str) -> HTMLResponse:
        try:
            services.ensure_schema()
            found = services.store.find_articles(article_id) if len(article_id) <= MAX_ID_CHARS else []
            if not found:
                return _html(services, "not_found.html", http_status=404, article_id=article_id)
            article, job = found[0]
            result = services.store.result(job.id)
        except _transient_errors() as exc:
            raise _unavailable(exc) from None
        columns, general_errors = language_columns(result, list((job.options or {}).get("targets") or []))
        paragraphs = [p.strip() for p in (article.cleaned_text or "").split("\n") if p.strip()]
        return _html(services, "article.html", article=article, job=job, result=result, columns=columns,
                     general_errors=general_errors, paragraphs=paragraphs, href=_safe_href(article.url),
                     others=[a.key for a, _ in found[1:]], quote=quote)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(next: str = "/") -> Response:
        if not settings.api_tokens:
            return RedirectResponse("/", status_code=303)
        return _html(services, "login.html", next=next, message="")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        target = (form.get("next") or ["/"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/"  # never redirect off this site
        if not settings.api_tokens:
            return RedirectResponse(target, status_code=303)
        if not given or not token_matches(given, settings.api_tokens):
            return _html(services, "login.html", http_status=403, next=target, message="That token is not valid.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=12 * 3600)
        return response

    def openapi() -> dict[str, Any]:
        """The generated schema, plus the article schema the POST body refers to (the body is
        read raw so that it is validated by `validate_article`, as everywhere else)."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=__doc__, routes=app.routes)
            article = Article.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(article.pop("$defs", {}))
            components["Article"] = article
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
