"""The registry of periodic jobs: name → (function, trigger settings, description).

A job function takes ``now`` (aware UTC) and returns a short summary dict of what it
did; it is thin and calls service functions, which claim their work in the database so
that a job run twice, or by two processes, does each piece of work once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[[datetime], dict]
    seconds: int  # interval between runs
    description: str
    external: bool = False  # its work leaves the machine (texts): a what-if run cannot be undone


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, seconds: int, description: str, external: bool = False):
    """Register a job function under ``name`` with a run interval in seconds; ``external`` when
    its work leaves the machine (it sends texts), so a what-if run of it cannot be rolled back."""

    def decorate(func: Callable[[datetime], dict]) -> Callable[[datetime], dict]:
        JOBS[name] = JobSpec(name, func, seconds, description, external)
        return func

    return decorate
