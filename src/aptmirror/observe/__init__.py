"""Run observation: events ─► terminal progress, logs, Prometheus metrics (and the state DB)."""
