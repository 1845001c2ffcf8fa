"""Training jobs that ship with orchestrator, installed as `orchestrator.jobs` (e.g. `orchestrator.jobs.lm.train`)."""
