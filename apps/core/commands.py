"""A management command whose failure is one plain line.

Django prints a `CommandError` raised from the command line as `CommandError: <message>`
and exits with its return code. The verifying commands (`verify_receipt`,
`verify_audit_chain`) promise one plain line instead (`Not valid: ...`), since a script
or a person reads it: this base prints the message alone to stderr and exits with the
same code. Through `call_command` (or with `--traceback`) the CommandError is raised as
usual, so callers and tests still get it.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class PlainErrorCommand(BaseCommand):
    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            from_command_line = getattr(self, "_called_from_command_line", False)
            if not from_command_line or options.get("traceback"):
                raise
            self.stderr.write(str(exc))
            raise SystemExit(exc.returncode) from None
