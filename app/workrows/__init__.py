"""The work-row engine: every API Queue item and Webhook Event goes through it.

A work row lives in the database, is held by at most one job at a time under a fenced
lease, changes status only through ``states.transition`` (checked against one declared
table per row kind), keeps an attempt log, is retried on the configured schedule and ends
Failed for an admin. Redis only carries row ids (``dispatch.hand_out``, after commit).

Modules: ``rows`` (the columns), ``states`` (the table and ``transition``), ``leases``
(claims, fencing tokens, renewal), ``dispatch`` (handing rows to jobs), ``admin``
(reprocess, discard, counts), ``boundary`` (what a job does with an exception).
"""
