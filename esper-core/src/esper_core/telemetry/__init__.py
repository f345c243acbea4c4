"""Core telemetry plumbing: the JSONL sink and the fan-out hub with per-sink isolation."""
