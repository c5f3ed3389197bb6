"""Composition root; the only layer that knows HTTP, environment variables and settings."""
