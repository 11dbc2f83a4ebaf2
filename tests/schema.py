"""Migration tests' way back: an app's schema as its latest migration leaves it.

A test that migrates an app backwards must end on the app's latest migration, not
on the one it tested: naming that one leaves every later migration of the app
unapplied for the tests after it."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migration_latest(label: str) -> str:
    """The name of app `label`'s latest migration."""
    [leaf] = MigrationExecutor(connection).loader.graph.leaf_nodes(label)
    return leaf[1]


def migrate_to_latest(label: str) -> None:
    """Apply app `label`'s migrations up to its latest."""
    MigrationExecutor(connection).migrate([(label, migration_latest(label))])
