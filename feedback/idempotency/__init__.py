"""Idempotent writes: an answered write is stored by (scope, key) and replayed, never redone."""
