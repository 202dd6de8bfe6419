"""Reconciliation and backfill: prove the CRM and the gateway agree, repair what does not,
and onboard records no trigger ever queued."""
