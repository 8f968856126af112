"""``praisondb copy|export|import|verify``: move sessions between stores and prove it.

Exit codes: 0 everything matched; 1 verification failed, conflicts were skipped or the
archive was damaged; 2 usage or configuration error. A progress line with rate and
ETA goes to stderr when it is a terminal; nothing is printed there otherwise.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TextIO, TypeVar

import click

from .. import transfer
from ..errors import PraisonDBError
from ..transfer import Progress, TransferReport, VerifyReport
from ..urls import redact, redact_text
from .output import echo_json
from .wording import current_command, for_command

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("praisondb.cli.transfer")


def _timestamp(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """ISO 8601; without an offset it means UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def selection_options(func: F) -> F:
    options = [
        click.option(
            "--session",
            "sessions",
            multiple=True,
            help="Only this session id (repeatable).",
        ),
        click.option("--user-id", help="Only sessions of this user."),
        click.option("--agent", help="Only sessions of this agent."),
        click.option(
            "--since",
            callback=_timestamp,
            help="Only sessions updated at or after (ISO 8601, UTC).",
        ),
        click.option(
            "--until", callback=_timestamp, help="Only sessions updated before (ISO 8601)."
        ),
        click.option(
            "--state",
            type=click.Choice(["auto", "all", "none"]),
            default="auto",
            show_default=True,
            help="State to include: auto = all scopes when unfiltered, else what the "
            "selected sessions read (their own scopes, app, their users' scopes).",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, 100_000),
            default=transfer.DEFAULT_BATCH_SIZE,
            show_default=True,
            help="Messages per read and write.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filters(kwargs: dict[str, Any]) -> dict[str, Any]:
    sessions = kwargs.pop("sessions")
    return {
        "sessions": list(sessions) if sessions else None,
        "user_id": kwargs.pop("user_id"),
        "agent": kwargs.pop("agent"),
        "since": kwargs.pop("since"),
        "until": kwargs.pop("until"),
    }


class ProgressLine:
    """One self-rewriting line on a terminal: done/total, percent, rate and ETA."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.label = label
        self.stream = stream
        self.shown = False
        self.last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        total = progress.messages_total
        parts = [f"{self.label}: {progress.messages_done:,}"]
        if total:
            parts[0] += f"/{total:,} messages {min(progress.messages_done / total, 1):.0%}"
        else:
            parts[0] += " messages"
        parts.append(f"{progress.rate:,.0f} msg/s")
        eta = progress.eta
        if eta is not None:
            parts.append(f"ETA {_duration(eta)}")
        sessions = f"sessions {progress.sessions_done:,}"
        if progress.sessions_total is not None:
            sessions += f"/{progress.sessions_total:,}"
        parts.append(sessions)
        self.stream.write("\r" + "  ".join(parts) + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[ProgressLine | None]:
    stream = sys.stderr
    if quiet or not stream.isatty():
        yield None
        return
    line = ProgressLine(label, stream)
    try:
        yield line
    finally:
        line.close()


INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


@contextmanager
def _interrupted(resume_hint: str) -> Iterator[None]:
    """Ctrl-C: say what happens on a re-run instead of a bare ``aborted``; exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"interrupted: {resume_hint}", err=True)
        sys.exit(INTERRUPTED)


def _copy_hint(dry_run: bool) -> str:
    if dry_run:
        return "nothing was written (dry run)"
    return (
        "the position is saved in the target; run the same command again to resume where "
        "it stopped (nothing is copied twice)"
    )


@contextmanager
def _redacted_errors(*urls: str) -> Iterator[None]:
    """Errors from drivers may quote a URL: print them scrubbed, exit 2."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except PraisonDBError as exc:
        text = for_command(redact_text(str(exc), *urls), current_command())
        click.echo(f"error: {text}", err=True)
        sys.exit(2)
    except Exception as exc:
        log.debug("transfer failed", exc_info=True)
        click.echo(
            f"error: {type(exc).__name__}: {redact_text(str(exc), *urls)} (-vv for details)",
            err=True,
        )
        sys.exit(2)


def _target_options(auto_migrate: bool) -> dict[str, Any] | None:
    return {"auto_migrate": True} if auto_migrate else None


def _speak_cli(report: TransferReport) -> None:
    """Notes are written for API users; rewrite their Python keywords as this command's flags."""
    command = current_command()
    report.notes = [for_command(note, command) for note in report.notes]
    if report.verify is not None:
        report.verify.notes = [for_command(note, command) for note in report.verify.notes]


def _finish(report: TransferReport, as_json: bool) -> None:
    _speak_cli(report)
    if as_json:
        echo_json(report.to_dict())
    else:
        _print_transfer(report)
    if not report.ok or report.sessions_conflicting:
        sys.exit(1)


def _print_transfer(report: TransferReport) -> None:
    arrow = f"{report.operation} {report.source} -> {report.target}"
    click.echo(arrow + ("  (dry run: nothing written)" if report.dry_run else ""))
    for note in report.notes:
        click.echo(f"  note: {note}")
    click.echo(_sessions_line(report))
    if report.dry_run:  # what it found, not how long the check took: that is no estimate
        click.echo(f"  messages: would move {report.messages_copied:,}")
    else:
        rate = f" ({report.messages_per_second:,.0f} msg/s)" if report.elapsed else ""
        click.echo(f"  messages: moved {report.messages_copied:,} in {report.elapsed:.1f}s{rate}")
    click.echo(
        f"  runs {report.runs_copied:,}, checkpoints {report.checkpoints_copied:,}, "
        f"spans {report.spans_copied:,}, state entries {report.state_copied:,}, "
        f"memories {report.memories_copied:,}"
    )
    if report.bytes is not None:
        click.echo(f"  bytes: {report.bytes:,} ({_human(report.bytes)}) as archive JSON")
    for conflict in report.conflicts:
        click.echo(f"  conflict: {conflict}")
    for damage in report.damage:
        click.echo(f"  damaged: {damage}")
    if report.verify is not None:
        _print_verify(report.verify)


def _sessions_line(report: TransferReport) -> str:
    if report.dry_run:
        return (
            f"  sessions: {report.sessions_seen:,} selected; {report.sessions_created:,} new, "
            f"{report.sessions_updated:,} to update, {report.sessions_unchanged:,} unchanged, "
            f"{report.sessions_replaced:,} to replace, {report.sessions_conflicting:,} conflicts"
        )
    return (
        f"  sessions: {report.sessions_seen:,} seen; created {report.sessions_created:,}, "
        f"updated {report.sessions_updated:,}, unchanged {report.sessions_unchanged:,}, "
        f"replaced {report.sessions_replaced:,}, conflicts {report.sessions_conflicting:,}"
    )


def _print_verify(report: VerifyReport) -> None:
    status = "ok" if report.ok else "FAILED"
    click.echo(
        f"verify: {status}: {report.sessions_checked:,} sessions "
        f"({report.sessions_different:,} differ), {report.messages_checked:,} messages, "
        f"{report.state_checked:,} state entries ({report.state_different:,} differ), "
        f"{report.memories_checked:,} memories ({report.memories_different:,} differ)"
    )
    for note in report.notes:
        click.echo(f"  note: {note}")
    for diff in report.differences:
        click.echo(f"  {diff}")
    if report.sessions_different > len(report.differences):
        click.echo(f"  ... and {report.sessions_different - len(report.differences):,} more")
    for text in report.state_differences:
        click.echo(f"  state {text}")
    for text in report.memory_differences:
        click.echo(f"  {text}")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@click.command("copy")
@click.argument("source")
@click.argument("target")
@selection_options
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Sessions copied in parallel.",
)
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "overwrite", "fail"]),
    default="skip",
    show_default=True,
    help="When the target holds a session the source cannot extend.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would move (sessions, messages, size); write nothing.",
)
@click.option("--no-verify", is_flag=True, help="Skip the verification pass after copying.")
@click.option(
    "--full",
    is_flag=True,
    help="Re-check every session, not only those updated since the last copy.",
)
@click.option("--auto-migrate", is_flag=True, help="Create/upgrade the target schema first.")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
def copy_command(source: str, target: str, **kwargs: Any) -> None:
    """Copy sessions, messages, runs, checkpoints and state from SOURCE to TARGET.

    Idempotent and resumable: re-running adds nothing, and a copy killed half-way
    continues where it stopped. Example:

        praisondb copy sqlite:///app.db postgresql://app@db/app --dry-run
    """
    as_json = kwargs.pop("as_json")
    filters = _filters(kwargs)
    with (
        _interrupted(_copy_hint(kwargs["dry_run"])),
        _redacted_errors(source, target),
        _progress("copy", kwargs.pop("quiet") or as_json) as bar,
    ):
        report = transfer.copy(
            source,
            target,
            **filters,
            batch_size=kwargs["batch_size"],
            workers=kwargs["workers"],
            on_conflict=kwargs["on_conflict"],
            dry_run=kwargs["dry_run"],
            verify=not kwargs["no_verify"],
            state=kwargs["state"],
            full=kwargs["full"],
            progress=bar,
            target_options=_target_options(kwargs["auto_migrate"]),
        )
    _finish(report, as_json)


@click.command("export")
@click.argument("source")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@selection_options
@click.option(
    "--gzip/--no-gzip", "compress", default=None, help="Compress (default: when FILE ends in .gz)."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
def export_command(source: str, file: str, **kwargs: Any) -> None:
    """Write sessions and state from SOURCE to an archive FILE (JSON Lines, .gz to compress)."""
    as_json = kwargs.pop("as_json")
    filters = _filters(kwargs)
    with _redacted_errors(source), _progress("export", kwargs.pop("quiet") or as_json) as bar:
        report = transfer.export(
            source,
            file,
            **filters,
            batch_size=kwargs["batch_size"],
            state=kwargs["state"],
            compress=kwargs["compress"],
            progress=bar,
        )
    _finish(report, as_json)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("target")
@click.option(
    "--on-conflict",
    type=click.Choice(["skip", "overwrite", "fail"]),
    default="skip",
    show_default=True,
    help="When the target holds a session the archive cannot extend.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=transfer.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Messages per write.",
)
@click.option("--dry-run", is_flag=True, help="Check the archive and print what would move.")
@click.option("--no-verify", is_flag=True, help="Skip comparing the target with the archive.")
@click.option(
    "--skip-damaged",
    is_flag=True,
    help="Import the intact sessions of a damaged archive (exit code 1).",
)
@click.option("--auto-migrate", is_flag=True, help="Create/upgrade the target schema first.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
def import_command(file: str, target: str, **kwargs: Any) -> None:
    """Load an archive FILE into TARGET. The whole file is checked before anything is written."""
    as_json = kwargs.pop("as_json")
    hint = (
        "nothing was written (dry run)"
        if kwargs["dry_run"]
        else "run the same command again: sessions already imported are checked, not "
        "written twice, and the rest are imported"
    )
    with (
        _interrupted(hint),
        _redacted_errors(target),
        _progress("import", kwargs.pop("quiet") or as_json) as bar,
    ):
        report = transfer.import_(
            file,
            target,
            on_conflict=kwargs["on_conflict"],
            batch_size=kwargs["batch_size"],
            dry_run=kwargs["dry_run"],
            verify=not kwargs["no_verify"],
            skip_damaged=kwargs["skip_damaged"],
            progress=bar,
            target_options=_target_options(kwargs["auto_migrate"]),
        )
    _finish(report, as_json)


@click.command("verify")
@click.argument("source")
@click.argument("target")
@selection_options
@click.option(
    "--live",
    is_flag=True,
    help="Tolerate appends to SOURCE made after the copy (compare up to the target).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
def verify_command(source: str, target: str, **kwargs: Any) -> None:
    """Compare SOURCE (a store, or an archive file) with TARGET; exit 1 if they differ.

    Per session: the record, message count, last seq, a digest of every message, and
    the first message that differs; then runs, checkpoints, spans and state.
    """
    as_json = kwargs.pop("as_json")
    filters = _filters(kwargs)
    with (
        _redacted_errors(source, target),
        _progress("verify", kwargs.pop("quiet") or as_json) as bar,
    ):
        report = transfer.verify(
            source,
            target,
            **filters,
            batch_size=kwargs["batch_size"],
            state=kwargs["state"],
            live=kwargs["live"],
            progress=bar,
        )
    if as_json:
        echo_json(report.to_dict())
    else:
        click.echo(f"verify {redact(report.source)} -> {redact(report.target)}")
        _print_verify(report)
    if not report.ok:
        sys.exit(1)
