"""What processing an article yields (docs/contracts.md, Result)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DONE, PARTIAL, FAILED = "done", "partial", "failed"


@dataclass
class Result:
    article_id: str
    external_id: str | None = None
    status: str = DONE
    source_lang: str | None = None
    source_lang_confidence: float | None = None
    title: dict[str, str] = field(default_factory=dict)
    summary: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, int] = field(default_factory=dict)
    # per translated language: what the fidelity checks counted and what failed (pipeline/checks.py);
    # a failed check is a finding for an editor, never an error
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per language and part ("title", "summary"): the sentences an editor corrected, each with
    # the machine text beside it, who and when; the title and summary above show the corrections
    corrections: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    job_id: str | None = None
    # The body as the pipeline read it (stored for the review page): `Cleaned.document`, light
    # Markdown with an HTML page's metadata first; not part of the result contract (docs/contracts.md), so to_dict() leaves it out.
    cleaned_text: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cleaned_text")
        # The result contract (docs/contracts.md) puts job_id first; keep that order for humans reading JSON lines.
        return {"job_id": data.pop("job_id"), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
