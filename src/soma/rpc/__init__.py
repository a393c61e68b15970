"""The public HTTP API: routes, models, limits and the server (what it reads and
executes through is `soma.orchestrator`)."""
