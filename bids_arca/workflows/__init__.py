"""The analysis levels: ``participant`` (per session) and ``group`` (across participants)."""
