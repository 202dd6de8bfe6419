"""The `paybridge` command line: processes, migrations, API keys, and queue admin actions."""

from __future__ import annotations

import json
import os
import sys

import click

from app.config import ConfigError, Settings
from app.runtime import Runtime


def _runtime() -> Runtime:
    return Runtime(Settings.from_env())


@click.group()
def cli() -> None:
    """Paybridge: keeps a CRM and a Direct Debit gateway in step."""


def main() -> None:
    """The `paybridge` command: a refused configuration is one line and exit status 2."""
    try:
        cli()
    except ConfigError as exc:
        click.echo(f"paybridge: {exc}", err=True)
        sys.exit(2)


@cli.command()
@click.option("--workers", default=2, show_default=True, help="RQ worker processes.")
@click.option("--no-emulators", is_flag=True, help="Do not start the sim/ emulators.")
def run(workers: int, no_emulators: bool) -> None:
    """Run everything: migrations, web app, workers, clock and the two emulators."""
    from app.supervisor import run_main_job

    sys.exit(run_main_job(workers=workers, emulators=not no_emulators))


@cli.command()
@click.option("--bind", default=None, help="host:port (default 127.0.0.1:$PORT or 8000).")
@click.option("--workers", "web_workers", default=2, show_default=True)
def web(bind: str | None, web_workers: int) -> None:
    """Run the web app under gunicorn."""
    bind = bind or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
    argv = [sys.executable, "-m", "gunicorn", "app.wsgi:app", "-c", "python:app.gunicorn_conf",
            "--bind", bind,
            "--workers", str(web_workers), "--access-logfile", "-", "--graceful-timeout", "20"]
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell


@cli.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--name", default=None)
def worker(burst: bool, name: str | None) -> None:
    """Run one RQ worker on both queues."""
    from workers.worker import run as run_worker

    run_worker(burst=burst, name=name)


@cli.command()
def clock() -> None:
    """Run the dispatcher beat (retries, lost jobs, scheduled mode)."""
    from workers.clock import run as run_clock

    run_clock()


@cli.command()
def dispatch() -> None:
    """Run one dispatcher pass now and print how many items were handed out."""
    from workers.dispatcher import dispatch_api

    click.echo(f"dispatched {dispatch_api(_runtime())} item(s)")


@cli.command()
def doctor() -> None:
    """Check this deployment against the real org and gateway; exit 1 if anything fails."""
    from app import doctor as checks

    found = checks.run(Runtime(Settings.from_env(), validate=False))
    for check in found:
        click.echo(check.line())
    failed = [c for c in found if c.outcome == checks.FAIL]
    click.echo(f"{len(found) - len(failed)} of {len(found)} checks passed or warned"
               + (f"; {len(failed)} failed" if failed else ""))
    sys.exit(1 if failed else 0)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app.migrate import upgrade

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}")


@cli.group("api-keys")
def api_keys() -> None:
    """API keys for CRM triggers and admin clients (stored hashed, shown once)."""


@api_keys.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["trigger", "admin", "operations"]), required=True)
def api_keys_create(name: str, role: str) -> None:
    """Create a key; the key itself is printed once, as the last line."""
    from app.auth import create_key

    with _runtime().db.transaction() as session:
        row, key = create_key(session, name, role)
        click.echo(f"created API key {row.id} ({role}) named {name!r}; store it now, it is "
                   "not shown again:")
    click.echo(key)


@api_keys.command("list")
def api_keys_list() -> None:
    import sqlalchemy as sa

    from app.auth import ApiKey

    with _runtime().db.transaction() as session:
        for key in session.scalars(sa.select(ApiKey).order_by(ApiKey.id)):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(f"{key.id}\t{key.name}\t{key.role}\t{key.prefix}...\t{state}")


@api_keys.command("revoke")
@click.argument("key_id", type=int)
def api_keys_revoke(key_id: int) -> None:
    from app.auth import revoke_key

    with _runtime().db.transaction() as session:
        ok = revoke_key(session, key_id)
    click.echo("revoked" if ok else "no active key with that id")
    sys.exit(0 if ok else 1)


@cli.group()
def queue() -> None:
    """API Queue admin: list, show, reprocess, discard."""


@queue.command("list")
@click.option("--status", type=click.Choice(["pending", "failed", "discarded"]))
@click.option("--object", "obj")
@click.option("--limit", default=50, show_default=True)
def queue_list(status: str | None, obj: str | None, limit: int) -> None:
    from queues import service

    for item in service.list_items(_runtime().db, status=status, obj=obj, limit=limit):
        click.echo(f"{item.id}\t{item.status}\t{item.object}\t{item.record_id}\t"
                   f"{item.operation}\tattempts={item.attempts}\t{item.last_error or ''}")


@queue.command("show")
@click.argument("item_id", type=int)
def queue_show(item_id: int) -> None:
    from queues import service

    item = service.get_item(_runtime().db, item_id)
    if item is None:
        raise click.ClickException(f"queue item {item_id} does not exist")
    click.echo(json.dumps(item.to_dict(detail=True), indent=2, default=str))


@queue.command("reprocess")
@click.argument("item_ids", type=int, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Every Failed item (with --object: of it).")
@click.option("--object", "obj")
def queue_reprocess(item_ids: tuple[int, ...], all_failed: bool, obj: str | None) -> None:
    """Make Failed items due again now (the dispatcher hands them out)."""
    from queues import service

    if not item_ids and not all_failed:
        raise click.UsageError("name item ids or pass --all-failed")
    rt = _runtime()
    done = service.reprocess(rt.db, ids=list(item_ids) or None, obj=obj, actor="cli")
    click.echo(f"reprocessing {len(done)} item(s): {' '.join(map(str, done))}")


@queue.command("discard")
@click.argument("item_id", type=int)
@click.option("--reason", required=True)
def queue_discard(item_id: int, reason: str) -> None:
    from queues import service

    try:
        item = service.discard(_runtime().db, item_id, reason, actor="cli")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if item is None:
        raise click.ClickException(f"queue item {item_id} does not exist")
    click.echo(f"discarded {item_id}")


@cli.group()
def users() -> None:
    """Operations console users (roles: admin, operations); passwords stored hashed."""


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "operations"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(name: str, role: str, password_stdin: bool) -> None:
    """Create a console user; the password is prompted for (or read from stdin)."""
    from app.users import UserError, create_user

    password = _password(password_stdin)
    try:
        with _runtime().db.transaction() as session:
            user = create_user(session, name, role, password)
            click.echo(f"created console user {user.name!r} ({role})")
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc


@users.command("list")
def users_list() -> None:
    import sqlalchemy as sa

    from app.users import User

    with _runtime().db.transaction() as session:
        for user in session.scalars(sa.select(User).order_by(User.name)):
            state = "disabled" if user.disabled_at else "active"
            last = f"{user.last_login_at:%Y-%m-%d %H:%M}" if user.last_login_at else "never"
            click.echo(f"{user.name}\t{user.role}\t{state}\tlast sign-in {last}")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(name: str, password_stdin: bool) -> None:
    """Set a new password; every open session of the user ends."""
    from app.users import UserError, set_password

    password = _password(password_stdin)
    try:
        with _runtime().db.transaction() as session:
            set_password(session, name, password)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password of {name!r} changed; their open sessions ended")


@users.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the user again instead.")
def users_disable(name: str, enable: bool) -> None:
    """Stop (or allow again) a user's sign-in; every open session ends at once."""
    from app.users import UserError, set_disabled

    try:
        with _runtime().db.transaction() as session:
            set_disabled(session, name, not enable)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{name!r} {'enabled' if enable else 'disabled'}")


@users.command("sign-out")
@click.argument("name")
def users_sign_out(name: str) -> None:
    """End every open console session of a user (a lost laptop, a shared screen)."""
    from app.users import UserError, end_sessions

    try:
        with _runtime().db.transaction() as session:
            ended = end_sessions(session, name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{ended} session{'' if ended == 1 else 's'} of {name!r} ended")


@cli.group()
def modulus() -> None:
    """UK modulus checking tables (Vocalink): the version in use, and checking a new one."""


@modulus.command("info")
def modulus_info() -> None:
    """Show the tables in use: version, source files, row counts."""
    from bankaccounts.modulus import TableFormatError
    from bankaccounts.tables import info

    try:
        details = info(Settings.from_env())
    except (TableFormatError, OSError) as exc:
        raise click.ClickException(f"the configured modulus tables cannot be used: {exc}") from exc
    for key, value in details.items():
        click.echo(f"{key}: {value}")


@modulus.command("check-table")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--substitutions", type=click.Path(dir_okay=False), default=None,
              help="A sort code substitution table (scsubtab.txt); default: the shipped one.")
def modulus_check_table(path: str, substitutions: str | None) -> None:
    """Check that a weight table (valacdos-vX-YY.txt) parses before you configure it."""
    from pathlib import Path

    from bankaccounts.modulus import TableFormatError, load_tables, tables_info

    try:
        tables = load_tables(path, substitutions)
    except TableFormatError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"cannot read: {exc}", err=True)
        sys.exit(1)
    details = tables_info(tables)
    click.echo(f"ok: version {details['version']}, {details['row_count']} weight rows, "
               f"{details['substitution_count']} substitutions")
    setting = f"MODULUS_WEIGHTS_PATH={Path(path).resolve()}"
    if substitutions:
        setting += f" MODULUS_SUBSTITUTIONS_PATH={Path(substitutions).resolve()}"
    click.echo(f"to use it, set {setting} and restart Paybridge")


def _register() -> None:
    from app.cli_reconcile import backfill, reconcile

    cli.add_command(reconcile)
    cli.add_command(backfill)


_register()


if __name__ == "__main__":
    main()


@cli.group()
def salesforce() -> None:
    """Getting a Salesforce org ready for Paybridge."""


@salesforce.command("metadata")
@click.argument("outdir", type=click.Path(file_okay=False, writable=True))
def salesforce_metadata(outdir: str) -> None:
    """Write the custom objects and fields the mapping needs, as Salesforce DX source
    (picklist labels from STATUS_LABELS); deploy them with `sf project deploy start`."""
    from pathlib import Path

    from app import salesforce_metadata as generator

    labels = Settings.from_env().status_labels
    written = generator.write(Path(outdir), labels)
    click.echo(f"wrote {len(written)} files under {outdir}; deploy them with:")
    click.echo(f"  cd {outdir} && sf project deploy start --manifest manifest/package.xml "
               "--target-org <alias>")
