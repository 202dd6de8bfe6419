"""``POST /salesforce/outbound``: Salesforce Outbound Messages in, SOAP Ack out."""

from __future__ import annotations

from flask import Response, current_app, request
from flask_smorest import Blueprint

from app.errors import AppError
from queues import outbound

blp = Blueprint("salesforce_outbound", __name__, url_prefix="/salesforce",
                description="Salesforce Outbound Messages (SOAP)")
SOAP = "text/xml; charset=utf-8"


@blp.route("/outbound", methods=["POST"])
@blp.doc(security=[], responses={200: {"description": "Ack"}, 400: {}, 403: {}})
def receive() -> Response:
    """Store a SOAP Outbound Message's changes, then acknowledge them."""
    rt = current_app.extensions["paybridge"]
    try:
        notifications = outbound.parse(request.get_data(), rt.settings.salesforce_org_id)
        queued = outbound.store(rt, notifications)
    except AppError as exc:
        outbound.log.warning("outbound message refused", extra={"code": exc.code})
        return Response(outbound.fault(str(exc)), status=exc.status, content_type=SOAP)
    outbound.log.info("outbound message stored",
                      extra={"notifications": len(notifications), "queued": queued})
    return Response(outbound.ACK, status=200, content_type=SOAP)
