"""The editors' review pages (server-rendered, no scripts): recent jobs, an article in every
language, and the login/logout forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from worker.api.dependencies import (
    SESSION_COOKIE,
    _fingerprint,
    SESSION_MAX_AGE_S,
    ApiServices,
    get_services,
    get_store,
    require_reviewer,
    token_matches,
)
from pipeline.clean import read_document
from worker.store import STATUSES

router = APIRouter(include_in_schema=False)
reviewer = [Depends(require_reviewer)]


@dataclass(frozen=True)
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


def html_page(services: ApiServices, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    page = services.templates.get_template(template).render(auth=bool(services.settings.api_tokens), **context)
    return HTMLResponse(page, status_code=http_status, headers={
        # no scripts on these pages at all; the styles are inline
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    })


def _local_target(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/", response_class=HTMLResponse, dependencies=reviewer)
@router.get("/jobs", response_class=HTMLResponse, dependencies=reviewer)
def jobs_page(status: str | None = Query(None), limit: int = Query(50, ge=1, le=500),
              services: ApiServices = Depends(get_services), store: Any = Depends(get_store)) -> HTMLResponse:
    if status is not None and status not in STATUSES:
        raise HTTPException(422, detail=f"status must be one of {', '.join(STATUSES)} (got {status!r})")
    rows = store.recent_jobs(status, limit)
    counts = store.counts()
    return html_page(services, "jobs.html", rows=rows, counts=counts, statuses=STATUSES, status=status,
                     limit=limit, quote=quote)


@router.get("/articles/{article_id:path}", response_class=HTMLResponse, dependencies=reviewer)
def article_page(article_id: str, services: ApiServices = Depends(get_services),
                 store: Any = Depends(get_store)) -> HTMLResponse:
    found = store.find_articles(article_id)
    if not found:
        return html_page(services, "not_found.html", http_status=404, article_id=article_id)
    article, job = found[0]
    result = store.result(job.id)
    columns, general_errors = language_columns(result, list((job.options or {}).get("targets") or []))
    # the body with its subheadings, quotes and lists; for HTML, what the page said of itself
    extracted, paragraphs = read_document(article.cleaned_text)
    extracted.pop("method", None)
    from worker.delivery.outbox import Outbox

    deliveries = Outbox(store).deliveries(job_id=job.id, limit=20)  # webhooks: where the result went
    return html_page(services, "article.html", article=article, job=job, result=result, columns=columns,
                     general_errors=general_errors, paragraphs=paragraphs, href=_safe_href(article.url),
                     extracted=extracted, canonical_href=_safe_href(extracted.get("url")),
                     others=[a.key for a, _ in found[1:]], quote=quote, deliveries=deliveries,
                     editable=_editable_sentences(job, article, result))


def _editable_sentences(job: Any, article: Any, result: Any) -> dict[str, dict[str, list[str]]]:
    """Per translated language and part, its sentences as a correction names them."""
    from worker.store.corrections import _sentences, part_source_lang
    from worker.store.schema import FINISHED, SUMMARY, TITLE

    if job.status not in FINISHED:
        return {}
    editable: dict[str, dict[str, list[str]]] = {}
    for kind, texts in ((TITLE, result.title), (SUMMARY, result.summary)):
        source = part_source_lang(job, article, kind)
        for lang, text in texts.items():
            if lang != source and text:
                editable.setdefault(lang, {})[kind] = _sentences(text, lang, kind)
    return editable


def _who(request: Request, services: ApiServices, editor: str) -> str:
    """The name the editor gave, and the fingerprint of the token they signed in with."""
    fingerprint = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        fingerprint = _fingerprint(header[7:].strip())
    elif request.cookies.get(SESSION_COOKIE):
        fingerprint = services.sessions.token_fingerprint(request.cookies[SESSION_COOKIE])
    name = " ".join(editor.split())[:100] or "reviewer"
    return f"{name} (token {fingerprint[:8]})" if fingerprint else name


@router.post("/articles/{article_id:path}/corrections", dependencies=reviewer)
async def correct_sentence(article_id: str, request: Request, services: ApiServices = Depends(get_services),
                           store: Any = Depends(get_store)) -> Response:
    """An editor's correction of one sentence of a translated title or summary; with a term
    (and a rendering, or none to keep it), also a glossary entry, in the same step."""
    from worker.store.corrections import CorrectionError
    from worker.store.glossary import GlossaryEntry

    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    try:
        sentence = int(form.get("sentence", ""))
    except ValueError:
        raise HTTPException(422, detail="sentence: a sentence number is required") from None
    try:
        correction = store.correct(article_id, form.get("kind", ""), form.get("lang", ""), sentence,
                                   form.get("text", ""), _who(request, services, form.get("editor", "")))
    except CorrectionError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    term = " ".join(form.get("glossary_term", "").split())
    if term and correction.source_lang:
        rendering = " ".join(form.get("glossary_rendering", "").split()) or None
        if len(term) > 200 or (rendering and len(rendering) > 200):
            raise HTTPException(422, detail="glossary_term, glossary_rendering: at most 200 characters")
        store.import_glossary([GlossaryEntry(correction.source_lang, correction.lang, term, rendering)])
    return RedirectResponse(f"/articles/{quote(article_id, safe='')}#lang-{quote(correction.lang)}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/", services: ApiServices = Depends(get_services)) -> Response:
    if not services.settings.api_tokens:
        return RedirectResponse("/", status_code=303)
    return html_page(services, "login.html", next=_local_target(next), message="")


@router.post("/login")
async def login(request: Request, services: ApiServices = Depends(get_services)) -> Response:
    """Check a token; on success set a signed session cookie (never the token itself).
    Failed attempts are limited per client address (429 with Retry-After past the limit)."""
    client = request.client.host if request.client else "unknown"
    wait = services.login_throttle.retry_after(client)
    if wait:
        return _too_many(services, wait)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0]
    target = _local_target((form.get("next") or ["/"])[0])
    tokens = services.settings.api_tokens
    if not tokens:
        return RedirectResponse(target, status_code=303)
    if not given or not token_matches(given, tokens):
        services.login_throttle.failed(client)
        return html_page(services, "login.html", http_status=403, next=target, message="That token is not valid.")
    services.login_throttle.succeeded(client)
    response = RedirectResponse(target, status_code=303)
    # scheme: https when the request came over TLS, or through a trusted proxy that says so
    # (uvicorn's forwarded_allow_ips = BABELWIRE_API_TRUSTED_PROXIES)
    response.set_cookie(SESSION_COOKIE, services.sessions.issue(given), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=SESSION_MAX_AGE_S, path="/")
    return response


def _too_many(services: ApiServices, wait: int) -> HTMLResponse:
    page = html_page(services, "login.html", http_status=429, next="/",
                     message=f"Too many failed sign-ins from this address; try again in {wait} s.")
    page.headers["Retry-After"] = str(wait)
    return page


@router.post("/logout")
def logout(request: Request) -> Response:
    """Drop the session cookie and go back to the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
