"""Configuration from the environment (`BABELWIRE_` prefix, docs/contracts.md, Settings).

Secrets (broker/database passwords, API tokens) come only from here, never from messages.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing import Annotated

from pipeline.article import Limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BABELWIRE_", extra="ignore")

    broker_url: str = "redis://localhost:6379/0"
    result_backend: str | None = None  # results live in the SQL store; Celery's backend is optional
    database_url: str = "sqlite:///babelwire.db"
    models_dir: Path = Path("models-store")
    targets: Annotated[tuple[str, ...], NoDecode] = ("de", "fr", "es")
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    compute_type: str = "auto"
    # CTranslate2 threads per process (0: all its cores; prefork gives each process its share),
    # as one-thread replicas that split each call between them (models.loader.LoadOptions.for_threads)
    threads: int = Field(0, ge=0)
    max_text_chars: int = Field(100_000, ge=1)
    max_html_chars: int = Field(2_000_000, ge=1)  # an article's `html`, as sent
    max_targets: int = Field(20, ge=1)
    model_memory_mb: int = Field(4096, ge=64)
    api_tokens: Annotated[tuple[str, ...], NoDecode] = ()
    api_max_body_bytes: int = Field(5_000_000, ge=1_000)
    api_max_articles: int = Field(100, ge=1)
    # Slow clients (`babelwire api`): request line + headers, and the whole body, must arrive
    # within these; idle keep-alive connections close; connections past the limit get a 503.
    api_header_timeout_s: float = Field(10.0, gt=0)
    api_body_timeout_s: float = Field(30.0, gt=0)
    api_keep_alive_s: float = Field(5.0, gt=0)
    api_max_connections: int = Field(200, ge=1)
    # Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, comma-separated
    # (uvicorn's forwarded_allow_ips; "*" trusts every client — only behind a private network)
    api_trusted_proxies: str = "127.0.0.1"
    task_soft_time_limit: int = Field(300, ge=1)
    task_time_limit: int = Field(360, ge=1)
    # Leases (worker/broker/lease.py): a worker renews its hold on each message it has taken
    # every BROKER_LEASE_RENEW_S; a message not renewed for BROKER_VISIBILITY_TIMEOUT seconds
    # (its worker died) is handed out again. Independent of the task time limits.
    broker_visibility_timeout: int = Field(60, ge=3)
    broker_lease_renew_s: float = Field(0, ge=0)  # 0: a sixth of the visibility timeout
    # Refused queue items (not a babelwire task message) are kept in the Redis list
    # `babelwire.dead`, newest first, up to this many.
    broker_dead_letter_max: int = Field(10_000, ge=1)
    # How far ahead (s) an ETA or countdown from outside may lie. 0: none beyond what our own
    # retries use (their countdown cap + 5 s clock slack, about a minute): see celery_app.max_eta.
    broker_max_eta_s: int = Field(0, ge=0)
    # Redis Sentinel: BROKER_URL `sentinel://h1:26379;sentinel://h2:26379;...` and the name the
    # sentinels monitor the master under.
    broker_sentinel_master: str | None = None
    # Replication is asynchronous: a publish returns once this many replicas have it (Redis
    # WAIT, up to the timeout, else the publish fails). 0: do not wait (README "Durability").
    broker_publish_replicas: int = Field(0, ge=0)
    broker_publish_replica_timeout_ms: int = Field(1000, ge=1)
    worker_pool: str = Field("prefork", pattern="^(prefork|threads|solo)$")  # `babelwire worker` default
    worker_concurrency: int = Field(0, ge=0)  # 0: one per CPU core (prefork/threads)
    # Translation memory (Redis): recurring sentences are not translated twice. Keys carry
    # the model's fingerprint; the TTL only bounds how much Redis memory it takes.
    translation_memory: bool = True
    translation_memory_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    translation_memory_url: str | None = None  # default: the broker's Redis
    # CTranslate2 decoding, chosen by measurement (BENCHMARKS.md): beam 2 keeps most of the
    # quality of beam 4 at a fraction of its cost; batches are cut by tokens, not sentences.
    translation_beam_size: int = Field(2, ge=1, le=8)
    translation_max_batch_tokens: int = Field(4096, ge=64)
    # Cross-article batching (`-P threads`): articles that reach one worker process together
    # share their model calls (pipeline/batching.py). 1 = off. Wants concurrency >= this.
    batch_articles: int = Field(1, ge=1, le=256)
    batch_window_ms: int = Field(20, ge=0, le=5000)  # how long the first article waits for others
    # Webhooks (worker/delivery, `babelwire webhooks`). A per-article callback_url is called
    # only if it matches the allowlist; any delivery goes only to public addresses, or to the
    # networks allowed here (CIDRs, e.g. an internal receiver's). Callbacks are signed with
    # the callback secret (whsec_...). Failed attempts are retried with exponential backoff
    # (base, capped at max) and jitter for retry_for_s, then the delivery is dead.
    webhook_callback_allowlist: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_allow_networks: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_callback_secret: str | None = None
    webhook_retry_base_s: float = Field(5.0, gt=0)
    webhook_retry_max_s: float = Field(3600.0, gt=0)
    webhook_retry_for_s: float = Field(25 * 3600.0, gt=0)
    webhook_connect_timeout_s: float = Field(5.0, gt=0)
    webhook_read_timeout_s: float = Field(10.0, gt=0)
    webhook_max_response_bytes: int = Field(64 * 1024, ge=0)
    webhook_concurrency: int = Field(8, ge=1, le=256)  # deliveries in flight per dispatcher
    webhook_poll_s: float = Field(1.0, gt=0)  # how often an idle dispatcher looks for due deliveries
    log_level: str = "INFO"
    metrics_port: int = Field(0, ge=0)  # worker metrics HTTP port; 0 = off

    @field_validator("targets", "api_tokens", "webhook_callback_allowlist", "webhook_allow_networks", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @property
    def lease_renew_interval(self) -> float:
        return self.broker_lease_renew_s or self.broker_visibility_timeout / 6

    @model_validator(mode="after")
    def _delivery_rules(self) -> "Settings":
        """Cross-field rules of delivery (a bad combination is a configuration error)."""
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError(f"BABELWIRE_TASK_SOFT_TIME_LIMIT ({self.task_soft_time_limit}) must be below "
                             f"BABELWIRE_TASK_TIME_LIMIT ({self.task_time_limit})")
        if self.broker_url.startswith("sentinel://") and not self.broker_sentinel_master:
            raise ValueError("BABELWIRE_BROKER_SENTINEL_MASTER must name the master the sentinels monitor "
                             "(a sentinel:// BABELWIRE_BROKER_URL)")
        if self.lease_renew_interval * 3 > self.broker_visibility_timeout:
            # a lease must survive a couple of missed renewals (a slow Redis, a busy machine)
            raise ValueError(f"BABELWIRE_BROKER_LEASE_RENEW_S ({self.lease_renew_interval:g}) must be at most a third "
                             f"of BABELWIRE_BROKER_VISIBILITY_TIMEOUT ({self.broker_visibility_timeout}), or a "
                             "running message may be handed out twice")
        return self

    @property
    def limits(self) -> Limits:
        return Limits(
            max_text_chars=self.max_text_chars,
            max_html_chars=self.max_html_chars,
            max_targets=self.max_targets,
            default_targets=tuple(self.targets),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
