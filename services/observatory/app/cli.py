"""The ``observatory`` command line: serve, run queued jobs, analyze a file locally, migrate
the database."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.core.errors import ObservatoryError

cli = typer.Typer(
    help="Observatory: conversation analysis.", no_args_is_help=True, add_completion=False
)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db, name="db")
keys_cli = typer.Typer(help="API keys: create, list, revoke, rotate.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default OBSERVATORY_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OBSERVATORY_PORT).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Analyses run at once in this process (default OBSERVATORY_WORKER_CONCURRENCY)."
        ),
    ] = None,
) -> None:
    """Start the HTTP API, the web docs and (unless the queue is Redis) the job runner."""
    import os

    import uvicorn

    from app.core.config import get_settings

    if workers is not None:
        os.environ["OBSERVATORY_WORKER_CONCURRENCY"] = str(workers)
        get_settings.cache_clear()
    from app.server import raise_file_limit, uvicorn_options

    settings = get_settings()
    raise_file_limit()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        **uvicorn_options(settings),
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Analyses run at once (default OBSERVATORY_WORKER_CONCURRENCY)."),
    ] = None,
) -> None:
    """Run analyses from the Redis queue (OBSERVATORY_QUEUE_BACKEND=redis) until SIGTERM: no
    new job is taken, running ones may finish, what still runs then is handed back."""
    import os

    from app.core.config import get_settings

    if concurrency is not None:
        os.environ["OBSERVATORY_WORKER_CONCURRENCY"] = str(concurrency)
        get_settings.cache_clear()
    settings = get_settings()
    if settings.queue_backend != "redis":
        typer.echo("error: observatory worker needs OBSERVATORY_QUEUE_BACKEND=redis", err=True)
        raise typer.Exit(2)
    from app.core.logging import configure_logging
    from app.jobs.redisqueue import RedisQueue
    from app.runtime import runtime

    configure_logging(settings.log_level, settings.log_json)

    async def run() -> None:
        async with runtime(settings, "worker") as state:
            assert isinstance(state.queue, RedisQueue)
            await state.queue.run_worker()

    asyncio.run(run())


def _load_input(path: str, fmt: str | None) -> dict[str, Any]:
    raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    stripped = raw.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            # Not JSON after all: a transcript may start with "[2026-03-02 10:15] Human: …".
            return {"conversation_text": raw, "format": fmt}
        if isinstance(data, dict) and ({"conversation_text", "messages"} & data.keys()):
            return {
                "conversation_text": data.get("conversation_text"),
                "messages": data.get("messages"),
                "format": fmt or data.get("format"),
            }
        return {"data": data, "format": fmt}
    return {"conversation_text": raw, "format": fmt}


@cli.command()
def analyze(
    file: Annotated[
        str, typer.Argument(help="A transcript or JSON export; - reads standard input.")
    ],
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Input format (default: detect).")
    ] = None,
    patterns: Annotated[
        str | None, typer.Option(help="Comma-separated pattern types (default: all).")
    ] = None,
    no_insights: Annotated[
        bool, typer.Option("--no-insights", help="Skip themes and summary.")
    ] = False,
    compact: Annotated[bool, typer.Option(help="One-line JSON.")] = False,
) -> None:
    """Analyse a conversation locally, without a server, and print the result as JSON."""
    from app.analysis import PATTERN_TYPES, AnalysisOptions
    from app.analysis import analyze as run_analysis
    from app.conversation.parsers import Limits, parse_conversation
    from app.core.config import get_settings

    settings = get_settings()
    kinds = (
        frozenset(p.strip() for p in patterns.split(",")) if patterns else frozenset(PATTERN_TYPES)
    )
    unknown = kinds - set(PATTERN_TYPES)
    if unknown:
        raise typer.BadParameter(
            f"unknown pattern types {sorted(unknown)}; allowed: {', '.join(PATTERN_TYPES)}"
        )
    try:
        conversation = parse_conversation(
            **_load_input(file, format),
            limits=Limits.from_settings(settings),
        )
    except ObservatoryError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    result = run_analysis(
        conversation, AnalysisOptions(pattern_types=kinds, include_insights=not no_insights)
    )
    typer.echo(json.dumps(result, ensure_ascii=False, indent=None if compact else 2, default=str))


@db.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    url: Annotated[
        str | None, typer.Option(help="Database URL (default OBSERVATORY_DATABASE_URL).")
    ] = None,
) -> None:
    """Apply the schema migrations."""
    from app.core.config import get_settings
    from app.core.database import create_engine
    from app.core.migrate import upgrade

    target = url or get_settings().database_url

    async def run() -> None:
        engine = create_engine(target)
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(run())
    typer.echo(f"database at {target.split('@')[-1]} is at revision {revision}")


def _with_session(work: Any) -> Any:
    """Run ``await work(session)`` in one committed transaction on the configured database
    (migrated first), turning expected errors into a message and exit code 1."""
    from app.core.config import get_settings
    from app.core.database import create_engine, session_factory
    from app.core.migrate import upgrade

    async def run() -> Any:
        engine = create_engine(get_settings().database_url)
        try:
            await upgrade(engine)
            async with session_factory(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ObservatoryError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _key_row(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "tier": key.tier,
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "replaced_by": key.replaced_by,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
    }


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    tier: Annotated[str, typer.Option(help="api_key or partner.")] = "api_key",
    scope: Annotated[
        list[str] | None, typer.Option(help="analyze (default) and/or metrics; repeat.")
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from datetime import timedelta

    from app.core.database import utcnow
    from app.keys import service

    if expires_in_days is not None and expires_in_days <= 0:
        typer.echo("error: --expires-in-days must be more than 0", err=True)
        raise typer.Exit(1)
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days is not None else None

    async def work(session: Any) -> Any:
        return await service.create(session, name=name, tier=tier, scopes=scope, expires_at=expires)

    created = _with_session(work)
    typer.echo(json.dumps({**_key_row(created.key), "key": created.secret}, indent=2))
    typer.echo("Store the key now: it is not shown again.", err=True)


@keys_cli.command("list")
def keys_list() -> None:
    """List keys (prefixes, never secrets)."""
    from app.keys import service

    keys = _with_session(service.list_keys)
    typer.echo(json.dumps([_key_row(k) for k in keys], indent=2))


@keys_cli.command("revoke")
def keys_revoke(ref: Annotated[str, typer.Argument(help="Key id or prefix.")]) -> None:
    """Revoke a key at once."""
    from app.keys import service

    async def work(session: Any) -> Any:
        return await service.revoke(session, ref)

    typer.echo(json.dumps(_key_row(_with_session(work)), indent=2))


@keys_cli.command("rotate")
def keys_rotate(
    ref: Annotated[str, typer.Argument(help="Key id or prefix.")],
    grace_hours: Annotated[float, typer.Option(help="How long the old key keeps working.")] = 24.0,
) -> None:
    """Replace a key: a new key is printed once; the old one works for the grace period."""
    from datetime import timedelta

    from app.keys import service

    async def work(session: Any) -> Any:
        return await service.rotate(session, ref, timedelta(hours=grace_hours))

    created = _with_session(work)
    typer.echo(json.dumps({**_key_row(created.key), "key": created.secret}, indent=2))
    typer.echo("Store the new key now: it is not shown again.", err=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
