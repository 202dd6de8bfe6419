"""`paybridge reconcile` and `paybridge backfill`: progress on the terminal (the same
progress is saved on the run, for the console), a summary by kind, Ctrl-C to stop (the next
identical command resumes where it stopped)."""

from __future__ import annotations

import sys
from typing import Any

import click

from app.mapping import OBJECTS
from app.runtime import Runtime


class _Lines:
    """reconcile's progress: one line each time an object moves to its next phase."""

    def __init__(self) -> None:
        self.current: tuple[str, str] | None = None
        self.count = 0

    def __call__(self, obj: str, phase: str, n: int) -> None:
        if (obj, phase) != self.current:
            self.flush()
            self.current, self.count = (obj, phase), 0
        self.count += n

    def flush(self) -> None:
        if self.current is not None:
            click.echo(f"  {self.current[0]:<13} {self.current[1]:<8} {self.count:>9,}")
            self.current = None


def _summary(run_id: int, summary: dict[str, Any], kind: str) -> int:
    found, remaining = summary.get("found", {}), summary.get("remaining", {})
    click.echo(f"{kind} run {run_id}: {sum(found.values())} difference(s), "
               f"{summary.get('repaired', 0)} repaired, {sum(remaining.values())} remaining")
    for name in sorted(found):
        click.echo(f"  {name:<22} found {found[name]:>7}  remaining {remaining.get(name, 0):>7}")
    return 1 if remaining else 0


@click.command()
@click.option("--object", "objects", multiple=True, type=click.Choice(list(OBJECTS)),
              help="Only this object (repeat for more); default: every mapped object.")
@click.option("--repair", is_flag=True, help="Apply the safe repairs; the rest wait for an admin.")
@click.option("--dry-run", is_flag=True, help="Find and record only: change nothing anywhere.")
def reconcile(objects: tuple[str, ...], repair: bool, dry_run: bool) -> None:
    """Compare every CRM record with its gateway resource; exit 1 while differences remain."""
    from reconcile import engine
    from reconcile.runs import AlreadyRunning

    rt = Runtime(_settings())
    names = [n for n in OBJECTS if n in objects] if objects else list(OBJECTS)
    lines = _Lines()
    try:
        run_id, summary = engine.reconcile(rt, names, repair=repair, dry_run=dry_run,
                                           progress=lines)
    except AlreadyRunning as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        lines.flush()
        click.echo("stopped: run the same command again to resume", err=True)
        sys.exit(130)
    lines.flush()
    sys.exit(_summary(run_id, summary, "reconcile"))


@click.command()
@click.argument("obj", metavar="OBJECT", type=click.Choice(["all", *OBJECTS]))
@click.option("--where", default=None, help="A SOQL condition the records must also meet.")
@click.option("--dry-run", is_flag=True, help="Find and record only: queue and link nothing.")
def backfill(obj: str, where: str | None, dry_run: bool) -> None:
    """Queue CRM records that have no gateway id (parents first), linking the ones that
    already exist at the gateway instead; bank accounts are reported, not queued."""
    from reconcile import backfill as onboarding
    from reconcile.runs import AlreadyRunning

    rt = Runtime(_settings())
    try:
        names = onboarding.objects_for(obj)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    total = sum(rt.crm.count_records(OBJECTS[n].sobject, onboarding.unsynced_where(where))
                for n in names)
    with click.progressbar(length=total, label="records", show_pos=True) as bar:
        try:
            run_id, summary = onboarding.backfill(
                rt, obj, where=where, dry_run=dry_run,
                progress=lambda _o, phase, n: bar.update(n) if phase == "match" else None)
        except AlreadyRunning as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("\nstopped: run the same command again to resume", err=True)
            sys.exit(130)
    sys.exit(_summary(run_id, summary, "backfill"))


def _settings() -> Any:
    from app.config import Settings

    return Settings.from_env()
