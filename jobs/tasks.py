"""The job functions: thin wrappers around service functions."""
from __future__ import annotations

from datetime import datetime

from jobs.registry import job
