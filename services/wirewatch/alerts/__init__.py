"""alerts: delivers alerts about tracked claims (for now: structured log lines)."""
