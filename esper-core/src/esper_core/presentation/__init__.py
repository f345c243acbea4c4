"""Presentation: the tables and summaries printed for people. Formatting only, no engine."""
