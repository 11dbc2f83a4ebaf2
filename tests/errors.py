"""Reading the API's error envelope in tests (apps/core/exceptions.py)."""

from collections import defaultdict


def error_fields(response) -> dict[str | None, list[str]]:
    """The messages of an error answer, per field (None: the body as a whole)."""
    body = response.json()
    fields: dict[str | None, list[str]] = defaultdict(list)
    for error in body["errors"]:
        fields[error["field"]].append(error["message"])
    return dict(fields)


def error_code(response) -> str:
    return response.json()["code"]
