"""What change capture relies on in a real org: SystemModstamp, and a late-visible transaction.

Salesforce stamps ``SystemModstamp`` on every write, by users and by the system
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm).
The stamp is taken when the transaction runs, but the record is only visible to queries once
the transaction commits, so a poller that asks "changed since my watermark" can miss a long
transaction whose stamp lies before the watermark; Salesforce's replication guidance is to
poll with an overlap for that reason
(https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_getupdated.htm:
"the data from the last call may not be completely committed").

``POST /sim/late-visible {"seconds": N}`` makes the *next* write transaction late-visible:
its records carry a SystemModstamp N seconds before the moment they become visible. The
switch is one-shot, like a single slow transaction.
"""

from __future__ import annotations

from flask import Blueprint, Response

from sim.salesforce.web import current_org, json_object, json_response

bp = Blueprint("sf_capture", __name__, url_prefix="/sim")


@bp.post("/late-visible")
def set_late_visible() -> Response:
    """Make the next write transaction late-visible by ``seconds``."""
    body = json_object()
    seconds = body.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        return json_response({"error": "seconds must be a positive number"}, 400)
    org = current_org()
    with org.lock:
        org.store.late_visible_seconds = float(seconds)
    return json_response({"late_visible_seconds": float(seconds)})


@bp.post("/outbound")
def set_outbound() -> Response:
    """Send Outbound Messages for regular users' creates and updates to ``url``."""
    body = json_object()
    org = current_org()
    with org.lock:
        org.outbound.url = body.get("url") or None
        org.outbound.fields = dict(body.get("fields") or {})
    return json_response({"url": org.outbound.url, "org_id": org.auth.org_id})


@bp.get("/outbound")
def get_outbound() -> Response:
    org = current_org()
    with org.lock:
        done = [{"ids": m.ids, "attempts": m.attempts, "acked": m.acked}
                for m in org.outbound.sent]
        pending = len(org.outbound._pending)
    return json_response({"org_id": org.auth.org_id, "sent": done, "pending": pending})
