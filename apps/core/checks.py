"""Helpers for system checks that several apps run."""

import os
from pathlib import Path
from typing import Literal

from django.core.checks import Error


def writable_path_check(
    *, setting: str, value: str, app: str, kind: Literal["file", "dir"], unset: str
) -> list[Error]:
    """The deploy check of a setting that names where this process writes: set
    (`unset` says what is lost when not; `<app>.E001`), absolute (E002), its directory
    there (E003), and writable by this process (E004). `kind` "dir": the setting
    names a directory it writes files in; "file": a file it appends to, made if
    missing."""
    if not value:
        return [Error(f"{setting} is not set: {unset}", id=f"{app}.E001")]
    path = Path(value)
    if not path.is_absolute():
        return [
            Error(
                f"{setting} ({value}) must be an absolute path: each process would "
                "resolve it from its own working directory.",
                id=f"{app}.E002",
            )
        ]
    if kind == "dir":
        if not path.is_dir():
            return [
                Error(
                    f"{setting} ({path}) is not a directory that exists.",
                    id=f"{app}.E003",
                )
            ]
        writable = os.access(path, os.W_OK | os.X_OK)
    else:
        if not path.parent.is_dir():
            return [
                Error(
                    f"{setting}'s directory ({path.parent}) does not exist.",
                    id=f"{app}.E003",
                )
            ]
        writable = not path.is_dir() and (
            os.access(path, os.W_OK)
            if path.exists()
            else os.access(path.parent, os.W_OK | os.X_OK)
        )
    if not writable:
        return [
            Error(
                f"{setting} ({path}) cannot be written by this process.",
                id=f"{app}.E004",
            )
        ]
    return []
