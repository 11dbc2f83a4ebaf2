"""Jobs run at once, each on a connection of its own: what real concurrency on
PostgreSQL looks like in a test (with `django_db(transaction=True)`)."""

import threading
from collections.abc import Callable

from django.db import connection


def at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run every job in a thread of its own, released together; each job's result,
    or the exception it raised."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = jobs[n]()
        except Exception as exc:
            results[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
