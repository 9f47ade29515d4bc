"""`babelwire models ...` (list, pull, convert, import, verify, remove) and `babelwire doctor`.

The store is `BABELWIRE_MODELS_DIR`. Exit codes: 0 done, 1 something failed or is missing
(a download, a verification, a target doctor finds unserved), 2 usage error (unknown
model name, bad archive or checkpoint, license not accepted, missing `convert` extra).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import typer

from models.catalogue import Catalogue, pull_hint, summarizer_hint
from models.exceptions import CatalogueError, ManifestError, ModelNotFoundError
from models.manifest import Manifest
from models.store import ModelStore
from worker.cli.app import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, fail, print_json
from worker.config import Settings, get_settings

models_app = typer.Typer(
    name="models",
    help="Model store: list, pull, convert, import, verify, remove.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")


def _echo(message: str) -> None:
    typer.echo(message, err=True)


def _store(settings: Settings) -> ModelStore:
    return ModelStore(settings.models_dir)


def _load_catalogue(path: Optional[Path]) -> Catalogue:
    try:
        return Catalogue.load(path)
    except CatalogueError as exc:
        raise fail(str(exc)) from None


def _languages(manifest: Manifest) -> str:
    if manifest.task != "translation":
        return ",".join(manifest.languages)
    if manifest.many_to_many:
        return f"{len(set(manifest.sources) | set(manifest.targets))} languages, any direction"
    return " ".join(f"{s}→{t}" for s, t in sorted(manifest.translation_pairs()))


# --- list ---------------------------------------------------------------------------------


@models_app.command("list")
def list_models(
    json_out: bool = typer.Option(False, "--json", help="one JSON array"),
    available: bool = typer.Option(False, "--available", help="the catalogue of models to pull"),
    catalogue_file: Optional[Path] = typer.Option(None, "--catalogue", help="another catalogue file"),
) -> None:
    """Models in the store (or, with --available, the catalogue)."""
    settings = get_settings()
    store = _store(settings)
    installed = set(store.names())
    if available:
        catalogue = _load_catalogue(catalogue_file)
        rows = [
            {
                "name": e.name, "task": e.task, "family": e.family, "hub_id": e.hub_id,
                "revision": e.revision, "languages": e.languages_text(), "size_mb": e.size_mb,
                "license": e.license, "commercial_use": e.commercial_use,
                "default": e.name in catalogue.defaults, "installed": e.name in installed,
            }
            for e in catalogue.entries
        ]
        if json_out:
            print_json(rows)
            return
        for r in rows:
            flags = ("default " if r["default"] else "") + ("installed" if r["installed"] else "")
            nc = "" if r["commercial_use"] else " NON-COMMERCIAL"
            typer.echo(
                f"{r['name']:<28} {r['task']:<13} {r['size_mb']:>6} MB  {r['license']}{nc:<15} "
                f"{r['languages'][:60]}  {flags}".rstrip()
            )
        return
    rows = []
    for m in store.manifests():
        rows.append({
            "name": m.name, "task": m.task, "family": m.family, "languages": _languages(m),
            "pairs": sorted([list(p) for p in m.translation_pairs()]) if m.task == "translation" else [],
            "summarizes": m.languages, "size_bytes": store.size_bytes(m.name),
            "quantization": m.quantization, "license": m.license, "source": m.source,
        })
    if json_out:
        print_json(rows)
        return
    if not rows:
        _echo(f"no models in {store.root}; get some: babelwire models pull --defaults")
        return
    for r in rows:
        typer.echo(
            f"{r['name']:<28} {r['task']:<13} {r['family']:<8} {r['size_bytes'] / 1e6:>8.1f} MB  "
            f"{r['quantization']:<8} {r['license']:<14} {r['languages'][:60]}"
        )
    for problem in store.problems():
        _echo(f"unusable: {problem.path}: {problem.error}")


# --- pull / convert / import ----------------------------------------------------------------


@models_app.command()
def pull(
    names: Optional[list[str]] = typer.Argument(None, help="catalogue names, hub ids (ORG/NAME) or opus-mt-xx-yy"),
    defaults: bool = typer.Option(False, "--defaults", help="the catalogue's default set"),
    accept_license: bool = typer.Option(
        False, "--accept-license", help="accept a non-commercial license (NLLB-200, mT5-XLSum) without asking"
    ),
    revision: Optional[str] = typer.Option(None, "--revision", help="a commit (or branch/tag) instead of the catalogue's"),
    quantization: str = typer.Option("int8", "--quantization", help="CTranslate2 weight type"),
    force: bool = typer.Option(False, "--force", help="pull again even if the model is in the store"),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="download cache (default: Hugging Face's)"),
    catalogue_file: Optional[Path] = typer.Option(None, "--catalogue", help="another catalogue file"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds to wait for the hub to answer"),
) -> None:
    """Download models from the Hugging Face hub and convert them into the store."""
    from models.exceptions import LicenseNotAccepted, PullError, UnknownModel
    from models.pull import pull as pull_model

    settings = get_settings()
    catalogue = _load_catalogue(catalogue_file)
    wanted = list(names or [])
    if defaults:
        wanted += [n for n in catalogue.defaults if n not in wanted]
    if not wanted:
        raise fail("name a model to pull, or pass --defaults (see: babelwire models list --available)")
    if revision and len(wanted) > 1:
        raise fail("--revision applies to one model; pull models one by one")

    def confirm(notice: str) -> bool:
        # Only a person at a terminal can accept a license; scripts pass --accept-license.
        return sys.stdin.isatty() and typer.confirm("Accept this license and download?", default=False)

    failed = usage = False
    for name in wanted:
        try:
            manifest = pull_model(
                name, settings.models_dir, catalogue=catalogue, revision=revision,
                accept_license=accept_license, confirm=confirm, quantization=quantization,
                cache_dir=cache_dir, timeout=timeout, force=force, echo=_echo,
            )
        except (LicenseNotAccepted, UnknownModel) as exc:
            _echo(f"error: {exc}")
            usage = True
            continue
        except PullError as exc:
            _echo(f"error: {exc}")
            failed = True
            continue
        typer.echo(f"{manifest.name}: {manifest.task} {_languages(manifest)} ({manifest.quantization})")
    if usage and not failed:
        raise typer.Exit(EXIT_USAGE)
    if failed or usage:
        raise typer.Exit(EXIT_FAILED)


@models_app.command()
def convert(
    src_dir: Path = typer.Argument(..., help="a Hugging Face checkpoint directory"),
    name: str = typer.Option(..., "--name", help="the model's name in the store"),
    task: Optional[str] = typer.Option(None, "--task", help="translation | summarization (default: by architecture)"),
    source: Optional[list[str]] = typer.Option(
        None, "--source", help="source language(s), comma-separated; for summarizers the languages served"
    ),
    target: Optional[list[str]] = typer.Option(None, "--target", help="target language(s), comma-separated"),
    quantization: str = typer.Option("int8", "--quantization", help="int8, int8_float16, int16, float16, float32, none, ..."),
    source_prefix: Optional[str] = typer.Option(None, "--source-prefix", help='text put before each input (T5: "summarize: ")'),
    license: Optional[str] = typer.Option(None, "--license", help="license to record (default: from README.md)"),
    force: bool = typer.Option(False, "--force", help="replace a model of that name"),
) -> None:
    """Convert a local Hugging Face checkpoint (Marian, M2M100, NLLB, BART, PEGASUS, T5, mT5)."""
    from models.convert import convert_checkpoint
    from models.exceptions import ConvertError

    settings = get_settings()
    if task is not None and task not in ("translation", "summarization"):
        raise fail(f"--task must be translation or summarization (got {task!r})")
    if not src_dir.is_dir():
        raise fail(f"{src_dir}: not a directory")
    _echo(f"converting {src_dir} into {settings.models_dir / name} ({quantization})")
    try:
        manifest = convert_checkpoint(
            src_dir, settings.models_dir, name, task=task, sources=source, targets=target,
            quantization=quantization, source_prefix=source_prefix, license=license, force=force,
        )
    except (ConvertError, ManifestError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{manifest.name}: {manifest.family} {manifest.task} {_languages(manifest)} ({manifest.quantization})")


@models_app.command("import")
def import_package(
    file: Path = typer.Argument(..., help="an Argos Translate package (.argosmodel)"),
    name: Optional[str] = typer.Option(None, "--name", help="the model's name (default: argos-FROM-TO)"),
    force: bool = typer.Option(False, "--force", help="replace a model of that name"),
) -> None:
    """Import an Argos Translate package (CTranslate2 + SentencePiece) as a translation model."""
    from models.argos import import_argos
    from models.exceptions import ArgosError

    settings = get_settings()
    try:
        manifest = import_argos(file, settings.models_dir, name=name, force=force)
    except (ArgosError, ManifestError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{manifest.name}: translation {_languages(manifest)}")


# --- verify / remove ------------------------------------------------------------------------


@models_app.command()
def verify(
    name: str = typer.Argument(...),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Load a model and run a probe: load time, memory, tokens/s."""
    from models.verify import verify_model

    settings = get_settings()
    try:
        report = verify_model(
            settings.models_dir, name, device=settings.device, compute_type=settings.compute_type,
            threads=settings.threads,
        )
    except (ModelNotFoundError, ManifestError) as exc:
        raise fail(str(exc)) from None
    if json_out:
        print_json(report.to_dict())
    else:
        status = "ok" if report.ok else "FAILED"
        typer.echo(f"{report.name}: {status} ({report.task}, {report.direction}, {report.device}/{report.compute_type})")
        typer.echo(f"  size {report.size_mb} MB, load {report.load_seconds:.2f} s, memory +{report.rss_growth_mb} MB")
        typer.echo(f"  {report.tokens_per_second} tokens/s ({report.output_tokens} tokens in {report.probe_seconds:.2f} s)")
        typer.echo(f"  in:  {report.sample_input}")
        typer.echo(f"  out: {report.sample_output[:200]}")
        for note in report.notes:
            typer.echo(f"  note: {note}")
        if report.error:
            _echo(f"error: {report.error}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@models_app.command()
def remove(name: str = typer.Argument(...)) -> None:
    """Delete a model from the store (running workers keep it until they restart)."""
    settings = get_settings()
    store = _store(settings)
    try:
        store.remove(name)
    except (ModelNotFoundError, ManifestError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"removed {name}")


# --- doctor ---------------------------------------------------------------------------------


@dataclass
class Check:
    check: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    routes: dict[str, dict[str, str | None]] = field(default_factory=dict)
    summarizers: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
            "routes": self.routes,
            "summarizers": self.summarizers,
            "missing": [c.fix or c.detail for c in self.checks if not c.ok],
        }


def _hide_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url


def check_broker(url: str, timeout: float = 2.0) -> Check:
    shown = _hide_password(url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return Check("broker", True, f"{shown} (not Redis: not checked)")
    from worker.broker.server import redis_server_version, redis_version_problem

    try:
        version = redis_server_version(url, timeout)
    except Exception as exc:
        return Check("broker", False, f"{shown}: {type(exc).__name__}: {exc}",
                     "start Redis, or set BABELWIRE_BROKER_URL to a reachable broker")
    problem = redis_version_problem(version)
    if problem:
        return Check("broker", False, f"{shown}: {problem}", "upgrade Redis (docker-compose runs redis:7)")
    return Check("broker", True, f"{shown} (Redis {version})")


def check_database(url: str, timeout: int = 3) -> Check:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:
        return Check("database", False, f"BABELWIRE_DATABASE_URL is not a database URL ({exc})",
                     "set BABELWIRE_DATABASE_URL, e.g. sqlite:///babelwire.db")
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.exists():
            ok = path.absolute().parent.is_dir()
            return Check("database", ok, f"{shown} (the file is created on first use)",
                         None if ok else f"create the directory {path.absolute().parent}")
    connect_args = {"connect_timeout": timeout} if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = create_engine(url, connect_args=connect_args)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:
        return Check("database", False, f"{shown}: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                     "start the database, or set BABELWIRE_DATABASE_URL")
    return Check("database", True, shown)


def run_doctor(settings: Settings, sources: list[str]) -> DoctorReport:
    from models.engines import ModelEngines
    from pipeline.exceptions import NoModelError

    report = DoctorReport()
    report.checks.append(check_broker(settings.broker_url))
    report.checks.append(check_database(settings.database_url))
    store = _store(settings)
    if not store.root.is_dir():
        report.checks.append(Check("store", False, f"{store.root} does not exist",
                                   "babelwire models pull --defaults (or set BABELWIRE_MODELS_DIR)"))
    else:
        names = store.names()
        report.checks.append(Check("store", True, f"{store.root} ({len(names)} models)"))
        for problem in store.problems():
            report.checks.append(Check("store", False, f"{problem.path}: {problem.error}",
                                       f"babelwire models remove {problem.path.name}, then pull it again"))
    engines = ModelEngines.open(settings.models_dir)
    for source in sources:
        routes: dict[str, str | None] = {}
        for target in settings.targets:
            if target == source:
                continue
            try:
                routes[target] = engines.translation(source, target).name
                report.checks.append(Check(f"{source}→{target}", True, routes[target]))
            except NoModelError:
                routes[target] = None
                report.checks.append(Check(f"{source}→{target}", False, "no translation model",
                                           pull_hint(source, target)))
        report.routes[source] = routes
        try:
            summarizer = engines.summarizer(source)
        except Exception as exc:  # a broken summarizer manifest
            summarizer = None
            report.checks.append(Check(f"summary {source}", False, f"{type(exc).__name__}: {exc}",
                                       summarizer_hint(source)))
        else:
            name = summarizer.name if summarizer else None
            report.checks.append(Check(
                f"summary {source}", summarizer is not None,
                name or "no abstractive summarizer (summaries are extractive)",
                None if summarizer else summarizer_hint(source),
            ))
        report.summarizers[source] = summarizer.name if summarizer else None
    return report


@app.command()
def doctor(
    json_out: bool = typer.Option(False, "--json"),
    source: str = typer.Option("en", "--source", help="source languages to check the targets from, comma-separated"),
) -> None:
    """Check broker, database, model store and models; print what is missing and the fix."""
    from pipeline.languages import is_known, normalize_code

    settings = get_settings()
    sources = [normalize_code(s) for s in source.split(",") if s.strip()]
    for code in sources:
        if not is_known(code):
            raise fail(f"--source: unknown language code {code!r}")
    report = run_doctor(settings, sources)
    if json_out:
        print_json(report.to_dict())
    else:
        for c in report.checks:
            line = f"{'ok' if c.ok else 'MISSING':<8} {c.check:<14} {c.detail}"
            typer.echo(line + (f"\n         fix: {c.fix}" if not c.ok and c.fix else ""))
        if report.ok:
            targets = ", ".join(settings.targets)
            typer.echo(f"all targets ({targets}) are served from {', '.join(sources)}; everything is ready")
        else:
            missing = sum(not c.ok for c in report.checks)
            typer.echo(f"{missing} problem(s); run the fix commands above")
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)
