"""Tolaria: the run engine that trains hosts, consults the controller and records everything."""
