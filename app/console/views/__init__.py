"""The console's pages, one module per concept, all on the ``console`` blueprint."""
