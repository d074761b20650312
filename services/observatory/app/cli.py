"""The ``observatory`` command line: serve, analyze a file locally, migrate the database."""

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
    """Start the HTTP API, the web docs and the embedded job runner in one process."""
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
