"""The core's own plugin: built-in gates, α schedules, reward terms and the JSONL sink."""
