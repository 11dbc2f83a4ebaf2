"""Hooks through which apps above access hear of its events, without access
importing them.

The one inversion of the layers in access: monitoring (above access) evaluates its
suspicious-access rules after each reveal, and access must not import monitoring. So
access owns this registry and monitoring registers its callable in
`MonitoringConfig.ready()`. Each watcher runs after the reveal's transaction commits
(`transaction.on_commit`, robust: a watcher that fails, a broker that cannot take a
task, is logged and undoes nothing), never inside it; a reveal rolled back runs none.

The registry is per process, filled as each process starts (every process runs the
apps' `ready()`): configuration, not state shared between processes.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from django.db import transaction


class RevealOpenedWatcher(Protocol):
    def __call__(self, *, staff_id: int) -> None: ...


_reveal_opened: list[RevealOpenedWatcher] = []


def reveal_opened_watch(watcher: RevealOpenedWatcher) -> None:
    """Have `watcher(staff_id=...)` run after each granted reveal commits, with the
    revealing staff member's id. Registering a watcher again changes nothing."""
    if watcher not in _reveal_opened:
        _reveal_opened.append(watcher)


def reveal_opened_notify(*, staff_id: int) -> None:
    """Schedule every watcher of granted reveals for after the current transaction
    commits (`reveal_open`)."""
    for watcher in _reveal_opened:
        transaction.on_commit(_told(watcher, staff_id=staff_id), robust=True)


def _told(watcher: RevealOpenedWatcher, *, staff_id: int) -> Callable[[], None]:
    # A function, not functools.partial: a robust callback that fails is logged
    # under its __qualname__, which a partial lacks.
    def tell() -> None:
        watcher(staff_id=staff_id)

    return tell


class RevealsSuspendedSource(Protocol):
    def __call__(self, *, staff_id: int) -> datetime | None: ...


_suspension_sources: list[RevealsSuspendedSource] = []


def reveals_suspended_source(source: RevealsSuspendedSource) -> None:
    """Have `source(staff_id=...)` say since when a staff member's reveals stand
    suspended (None: they do not): monitoring registers its alerts here. Registering
    a source again changes nothing."""
    if source not in _suspension_sources:
        _suspension_sources.append(source)


def reveals_suspended_since(*, staff_id: int) -> datetime | None:
    """Since when the staff member's reveals stand suspended, the earliest any source
    says; None when none does. The one definition of a suspension that holds: the
    staff customer page's notice asks it, and `reveal_open` refuses while it answers
    (reading it under the staff member's row)."""
    found = [s(staff_id=staff_id) for s in _suspension_sources]
    return min((when for when in found if when is not None), default=None)
