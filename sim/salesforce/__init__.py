"""Salesforce org emulator: the REST API subset simple-salesforce uses, over real HTTPS.

Test equipment for end-to-end tests, the demo, the chaos suite and benchmarks. The org
declares its own schema (``sim.salesforce.metadata``) and checks every write against it as
Salesforce does; records, sessions and counters live in memory. Changes made by
regular users are pushed to Paybridge the way an Apex trigger would; changes made by the
integration user are not. ``/sim/*`` is the control API (faults, counters, records).
"""

from sim.salesforce.config import SimConfig
from sim.salesforce.server import RunningServer, create_app, org_of, serve, start_in_thread

__all__ = ["RunningServer", "SimConfig", "create_app", "org_of", "serve", "start_in_thread"]
