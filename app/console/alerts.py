"""Alerts, checked from the clock: items became Failed, a queue's oldest pending item is too
old, Salesforce API usage passed its threshold.

Failures are grouped: each look collects the rows that became Failed since the last look
(their ``updated_at``, minus a short lag so a transaction still committing is seen next
time) into the open group; the group goes out as ONE alert when a look finds nothing new
(the burst is over) or when it has been open for ALERT_GROUP_WINDOW. A burst of 500
failures is one message. Conditions alert when they start, repeat every ALERT_REPEAT while
they last, and say when they are resolved.

State lives in the database (alert_state); the network calls happen after it is committed.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.console.dashboard import QUEUES, salesforce_usage
from app.console.models import Alert, AlertState
from app.console.notify import deliver
from app.runtime import Runtime
from reconcile.service import last_run

COMMIT_LAG = timedelta(seconds=10)
SAMPLE_ERRORS = 5


def _state(session: Session, kind: str, now: datetime) -> tuple[AlertState, bool]:
    state = session.get(AlertState, kind, with_for_update=True)
    if state is None:
        state = AlertState(kind=kind, watermark=now, pending=0, pending_detail={},
                           active=False)
        session.add(state)
        return state, True
    return state, False


def _failures(rt: Runtime, session: Session, queue: str, now: datetime) -> dict[str, Any] | None:
    spec = QUEUES[queue]
    model, kind_col = spec["model"], spec["kind"]
    until = now - COMMIT_LAG
    state, new_state = _state(session, f"failed:{queue}", until)
    if new_state:  # nothing before the first look is news
        return None
    rows = session.execute(sa.select(kind_col, model.last_error).where(
        model.status == "failed", model.updated_at > state.watermark,
        model.updated_at <= until)).all()
    state.watermark = until
    counts = Counter(kind for kind, _ in rows)
    detail = dict(state.pending_detail or {})
    if rows:
        by_kind = Counter(detail.get("by_kind", {}))
        by_kind.update(counts)
        errors = list(detail.get("errors", []))
        for _, error in rows:
            if error and error not in errors and len(errors) < SAMPLE_ERRORS:
                errors.append(error[:300])
        detail = {"by_kind": dict(by_kind), "errors": errors,
                  "since": detail.get("since") or until.isoformat()}
        state.pending += len(rows)
    state.pending_detail = detail
    if not state.pending:
        return None
    opened = datetime.fromisoformat(detail["since"])
    if rows and until - opened < timedelta(seconds=rt.settings.alert_group_window):
        return None
    alert = _failure_alert(rt, queue, state.pending, detail)
    state.pending, state.pending_detail, state.last_sent_at = 0, {}, now
    return alert


def _failure_alert(rt: Runtime, queue: str, count: int, detail: dict[str, Any]) -> dict[str, Any]:
    label = QUEUES[queue]["label"]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(detail["by_kind"].items(),
                                                   key=lambda kv: -kv[1]))
    lines = [f"{count} {label} item(s) became Failed since {detail['since'][:19]} UTC.",
             f"By type: {kinds}."]
    if detail.get("errors"):
        lines += ["Errors seen:", *(f"- {e}" for e in detail["errors"])]
    path = "/items" if queue == "api" else "/events"
    if rt.settings.console_url:
        lines.append(f"Review them: {rt.settings.console_url.rstrip('/')}{path}?status=failed")
    return {"kind": f"failed:{queue}", "count": count,
            "subject": f"Paybridge: {count} {label} item(s) Failed", "body": "\n".join(lines)}


def _condition(rt: Runtime, session: Session, kind: str, now: datetime, bad: bool,
               subject: str, body: str) -> dict[str, Any] | None:
    """Alert when a condition starts, repeat while it lasts, say when it is resolved."""
    state, _ = _state(session, kind, now)
    due = state.last_sent_at is None or (
        now - state.last_sent_at >= timedelta(seconds=rt.settings.alert_repeat))
    if bad and (not state.active or due):
        state.active, state.last_sent_at = True, now
        return {"kind": kind, "count": 1, "subject": subject, "body": body}
    if not bad and state.active:
        state.active, state.last_sent_at = False, now
        return {"kind": kind, "count": 0, "subject": f"Resolved: {subject}",
                "body": "Back to normal."}
    return None


def _pending_age(rt: Runtime, session: Session, queue: str,
                 now: datetime) -> dict[str, Any] | None:
    limit = rt.settings.alert_pending_age
    if limit <= 0:
        return None
    spec = QUEUES[queue]
    model = spec["model"]
    oldest = [session.scalar(sa.select(model.created_at).where(model.status == status)
                             .order_by(model.id).limit(1)) for status in spec["waiting"]]
    first = min((o for o in oldest if o is not None), default=None)
    age = (now - first).total_seconds() if first else 0.0
    return _condition(rt, session, f"pending_age:{queue}", now, age > limit,
                      f"Paybridge: {spec['label']} has items waiting over {limit / 60:.0f} min",
                      f"The oldest pending {spec['label']} item has waited {age / 60:.0f} "
                      "minutes. Are the workers and the clock running?")


def _salesforce(rt: Runtime, session: Session, now: datetime) -> dict[str, Any] | None:
    threshold = rt.settings.alert_salesforce_usage
    usage = salesforce_usage(rt)
    if threshold <= 0 or usage is None:
        return None
    return _condition(rt, session, "salesforce_usage", now, usage["share"] >= threshold,
                      f"Paybridge: Salesforce API usage over {threshold:.0%}",
                      f"The org has used {usage['used']:,} of {usage['allocation']:,} API "
                      f"calls in the rolling 24 hours ({usage['share']:.1%}).")


def _reconcile(rt: Runtime, session: Session, now: datetime) -> dict[str, Any] | None:
    last = last_run(session)
    if last is None:
        return None
    remaining = last["summary"].get("remaining", {})
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(remaining.items()))
    return _condition(rt, session, "reconcile", now, bool(remaining),
                      "Paybridge: the CRM and the gateway disagree after reconcile",
                      f"Reconcile run {last['id']} left {sum(remaining.values())} "
                      f"difference(s) after its repairs: {kinds}. They wait for an admin "
                      "(each one's note says what to do).")


def check(rt: Runtime) -> list[Alert]:
    """One look at everything; returns the alerts sent (already stored)."""
    now = utcnow()
    with rt.db.transaction() as session:
        found = [_failures(rt, session, "api", now), _failures(rt, session, "webhook", now),
                 _pending_age(rt, session, "api", now),
                 _pending_age(rt, session, "webhook", now), _salesforce(rt, session, now),
                 _reconcile(rt, session, now)]
    sent = []
    for alert in (a for a in found if a):
        delivery = deliver(rt.settings, alert["subject"], alert["body"])
        with rt.db.transaction() as session:
            row = Alert(**alert, delivery=delivery, created_at=utcnow())
            session.add(row)
        sent.append(row)
    return sent


def recent(rt: Runtime, limit: int = 50) -> list[Alert]:
    with rt.db.transaction() as session:
        return list(session.scalars(sa.select(Alert).order_by(Alert.id.desc()).limit(limit)))
