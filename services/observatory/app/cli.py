"""The ``observatory`` command line: serve, run queued jobs, analyze a file locally, migrate
the database."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from app.core.errors import ObservatoryError

T = TypeVar("T")

cli = typer.Typer(
    help="Observatory: conversation analysis.", no_args_is_help=True, add_completion=False
)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db, name="db")
keys_cli = typer.Typer(
    help="API keys: create, list, revoke, rotate; result encryption keys: encryption-key, "
    "reencrypt.",
    no_args_is_help=True,
)
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


def _fail(message: str) -> NoReturn:
    """One line on standard error and exit code 2 (the input could not be used)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _read(path: str) -> str:
    """The text of ``path`` (``-``: standard input), or a one-line error saying why not."""
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        _fail(f"{name}: no such file")
    except IsADirectoryError:
        _fail(f"{name}: is a directory; give a transcript or a JSON export file")
    except PermissionError:
        _fail(f"{name}: permission denied")
    except UnicodeDecodeError as exc:
        _fail(f"{name}: not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8")
    except OSError as exc:
        _fail(f"{name}: cannot be read ({exc.strerror or exc})")


def _load_input(raw: str, fmt: str | None) -> dict[str, Any]:
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


# Input at least this long shows progress on a terminal (an analysis of it takes seconds).
PROGRESS_MIN_MESSAGES = 1000
PROGRESS_MIN_CHARS = 500_000
PROGRESS_INTERVAL_SECONDS = 0.5
OUTPUT_FORMATS = ("json", "text")


def _with_progress(label: str, work: Callable[[], T], show: bool) -> T:
    """Run ``work()``; when ``show``, a line on standard error counts the seconds meanwhile
    (the analysis is one computation: elapsed time is the honest measure of progress)."""
    if not show:
        return work()
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        spinner = "|/-\\"
        n = 0
        while not stop.wait(PROGRESS_INTERVAL_SECONDS):
            n += 1
            elapsed = time.monotonic() - started
            sys.stderr.write(f"\r{spinner[n % 4]} {label} {elapsed:.0f} s")
            sys.stderr.flush()

    sys.stderr.write(f"- {label}")
    sys.stderr.flush()
    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        return work()
    finally:
        stop.set()
        thread.join()
        sys.stderr.write(f"\r\x1b[K{label} done in {time.monotonic() - started:.1f} s\n")
        sys.stderr.flush()


@cli.command()
def analyze(
    file: Annotated[
        str, typer.Argument(help="A transcript or JSON export; - reads standard input.")
    ],
    input_format: Annotated[
        str | None,
        typer.Option(
            "--input-format",
            "-i",
            help="Input format: text, messages, openai, chatgpt, claude, sharegpt, convokit "
            "(default: detect).",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--format", help="Output: json (the full result) or text (a readable summary)."
        ),
    ] = "json",
    patterns: Annotated[
        str | None, typer.Option(help="Comma-separated pattern types (default: all).")
    ] = None,
    no_insights: Annotated[
        bool, typer.Option("--no-insights", help="Skip themes and summary.")
    ] = False,
    compact: Annotated[bool, typer.Option(help="One-line JSON.")] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show progress on standard error (default: for long input on a terminal).",
        ),
    ] = None,
) -> None:
    """Analyse a conversation locally, without a server, and print the result (JSON or text)."""
    from app.analysis import PATTERN_TYPES, AnalysisOptions
    from app.analysis import analyze as run_analysis
    from app.conversation.parsers import FORMATS, Limits, parse_conversation
    from app.core.config import get_settings
    from app.core.summary import to_text

    if output not in OUTPUT_FORMATS:
        hint = (
            f"; '{output}' is an input format: use --input-format {output}"
            if output in FORMATS
            else ""
        )
        raise typer.BadParameter(
            f"--format is the output: {' or '.join(OUTPUT_FORMATS)}{hint}", param_hint="--format"
        )
    settings = get_settings()
    kinds = (
        frozenset(p.strip() for p in patterns.split(",")) if patterns else frozenset(PATTERN_TYPES)
    )
    unknown = kinds - set(PATTERN_TYPES)
    if unknown:
        raise typer.BadParameter(
            f"unknown pattern types {sorted(unknown)}; allowed: {', '.join(PATTERN_TYPES)}"
        )
    raw = _read(file)
    try:
        conversation = parse_conversation(
            **_load_input(raw, input_format),
            limits=Limits.from_settings(settings),
        )
    except ObservatoryError as exc:
        _fail(exc.detail)
    del raw
    long_input = (
        len(conversation) >= PROGRESS_MIN_MESSAGES or conversation.char_count >= PROGRESS_MIN_CHARS
    )
    show = progress if progress is not None else long_input and sys.stderr.isatty()
    result = _with_progress(
        f"analysing {len(conversation):,} messages",
        lambda: run_analysis(
            conversation, AnalysisOptions(pattern_types=kinds, include_insights=not no_insights)
        ),
        show,
    )
    if output == "text":
        typer.echo(to_text(result), nl=False)
    else:
        typer.echo(
            json.dumps(result, ensure_ascii=False, indent=None if compact else 2, default=str)
        )


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


def _on_database(work: Any, url: str | None = None) -> Any:
    """Run ``await work(engine, sessions)`` on the configured database (migrated first),
    turning expected errors into a message and exit code 1."""
    from app.core.config import get_settings
    from app.core.database import create_engine, session_factory
    from app.core.migrate import upgrade

    async def run() -> Any:
        engine = create_engine(url or get_settings().database_url)
        try:
            await upgrade(engine)
            return await work(engine, session_factory(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except ObservatoryError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _audited(sessions: Any, action: str, target: str | None = None, **detail: Any) -> Any:
    """Writes the audit event of a command that changed something (done by the server's
    operator: the principal is the operating-system user)."""
    from app.audit import service as audit

    return audit.append(
        sessions,
        [audit.Event(action, audit.cli_principal(), "ok", target=target, detail=detail or None)],
    )


def _with_session(work: Any, action: str | None = None) -> Any:
    """Run ``await work(session)`` in one committed transaction with, when ``action`` is
    given, its audit event (the target is the id of what ``work`` returned): the change and
    its event are committed together or not at all."""
    from app.audit import service as audit

    async def run(_engine: Any, sessions: Any) -> Any:
        async with sessions() as session, session.begin():
            done = await work(session)
            if action is not None:
                key = getattr(done, "key", done)
                event = audit.Event(action, audit.cli_principal(), "ok", target=key.id)
                await audit.append_in(session, [event])
        return done

    return _on_database(run)


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

    created = _with_session(work, "key.create")
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

    typer.echo(json.dumps(_key_row(_with_session(work, "key.revoke")), indent=2))


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

    created = _with_session(work, "key.rotate")
    typer.echo(json.dumps({**_key_row(created.key), "key": created.secret}, indent=2))
    typer.echo("Store the new key now: it is not shown again.", err=True)


@keys_cli.command("encryption-key")
def keys_encryption_key(
    key_id: Annotated[
        str | None, typer.Option("--id", help="Its id (default: a random one).")
    ] = None,
) -> None:
    """Print a new key for stored results, as `id:key`. Put it first in
    OBSERVATORY_RESULT_KEYS (keeping the old ones after it), restart, then run
    `observatory keys reencrypt`."""
    from app.core.crypto import KEY_ID, new_key_spec

    if key_id is not None and not KEY_ID.fullmatch(key_id):
        typer.echo("error: --id is 1 to 32 letters, digits, '-' or '_'", err=True)
        raise typer.Exit(2)
    typer.echo(new_key_spec(key_id))


@keys_cli.command("reencrypt")
def keys_reencrypt(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 200,
) -> None:
    """Seal every stored result with the current (first) key, in short transactions, while
    the service keeps serving: reads open each result with the key its row names."""
    from app.analyses.repository import reencrypt
    from app.core.config import get_settings
    from app.core.crypto import cipher_from_settings

    settings = get_settings()
    cipher = cipher_from_settings(
        settings.result_keys, settings.result_key_file, settings.database_url
    )

    async def run(_engine: Any, sessions: Any) -> Any:
        done = await reencrypt(sessions, cipher, batch_size)
        await _audited(
            sessions,
            "result_key.reencrypt",
            cipher.current,
            sealed=done.sealed,
            unreadable=done.unreadable,
        )
        return done

    done = _on_database(run)
    typer.echo(
        json.dumps({"key": cipher.current, "sealed": done.sealed, "unreadable": done.unreadable})
    )
    if done.unreadable:
        typer.echo(
            f"{done.unreadable} result(s) are sealed with a key that is not configured (or "
            "fail authentication) and were left as they are",
            err=True,
        )
        raise typer.Exit(1)


@cli.command("erase")
def erase(
    owner: Annotated[str, typer.Option(help="The owner: `key:<key id>` or `sub:<token subject>`.")],
) -> None:
    """Erase everything OWNER created (a data subject's request): analyses become tombstones,
    batches and callback deliveries go. Running work on a server notices within seconds."""
    from app.analyses.service import erase_owner

    async def run(engine: Any, sessions: Any) -> Any:
        counts = await erase_owner(sessions, engine, owner)
        await _audited(sessions, "analysis.erase_owner", owner, **counts)
        return counts

    typer.echo(json.dumps({"owner": owner, **_on_database(run)}))


retention_cli = typer.Typer(help="Retention of results and metadata.", no_args_is_help=True)
cli.add_typer(retention_cli, name="retention")


@retention_cli.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="Count what would go; change nothing.")] = False,
) -> None:
    """Remove what outlived its period now (the service also does it on an interval)."""
    from app.core.config import get_settings
    from app.retention.service import run as run_retention

    async def run(engine: Any, sessions: Any) -> Any:
        return await run_retention(engine, sessions, get_settings(), dry_run=dry_run)

    typer.echo(json.dumps(_on_database(run).as_dict()))


audit_cli = typer.Typer(help="The append-only audit log.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


def _existing_database() -> None:
    """The audit commands read a log: pointed at a SQLite file that is not there, they say
    so (exit code 2) instead of creating an empty database and finding nothing wrong."""
    from sqlalchemy.engine import make_url

    from app.core.config import get_settings

    url = make_url(get_settings().database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            typer.echo(f"error: no database at {path} (OBSERVATORY_DATABASE_URL)", err=True)
            raise typer.Exit(2)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain end to end: edited, removed or reordered events are
    reported by id (exit code 1)."""
    from app.audit import service as audit

    _existing_database()

    async def run(_engine: Any, sessions: Any) -> Any:
        return await audit.verify(sessions)

    report = _on_database(run)
    typer.echo(json.dumps({"ok": report.ok, **dataclasses.asdict(report)}))
    if not report.ok:
        raise typer.Exit(1)


def _since(value: str) -> Any:
    from datetime import UTC, datetime, timedelta

    from app.core import patterns

    relative = patterns.compile(r"^(\d{1,6})([dh])$").match(value)
    try:
        if relative:
            amount, unit = int(relative[1]), relative[2]
            return datetime.now(UTC) - timedelta(**{"days" if unit == "d" else "hours": amount})
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise typer.BadParameter(
            f"{value!r} is neither an ISO 8601 date or time between the years 1 and 9999 "
            "(2026-12-01, 2026-12-01T09:00:00+00:00) nor an age such as 7d or 12h"
        ) from None


@audit_cli.command("export")
def audit_export(
    since: Annotated[
        str | None,
        typer.Option(help="From this ISO 8601 date or time, or an age (7d, 12h); default: all."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write audit events as JSON lines, oldest first, each with its id and hashes."""
    from app.audit import service as audit

    start = _since(since) if since is not None else None
    _existing_database()
    out = output.open("w", encoding="utf-8") if output is not None else sys.stdout

    async def run(_engine: Any, sessions: Any) -> Any:
        return await audit.export(sessions, out, start)

    try:
        count = _on_database(run)
    finally:
        if output is not None:
            out.close()
    typer.echo(f"{count} event(s) written", err=True)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
