"""Memory of a long run of batches in one process."""

import gc

# Batches between two collections: about 85 ms each in a Django process here, against
# a quarter of a second or more of work a batch.
CYCLES_EVERY = 16


def cycles_collect(batches_done: int) -> None:
    """Collect cyclic garbage (a full collection) after every `CYCLES_EVERY` batches
    of a long run. Django's queries leave cycles (query, compiler, expressions) that
    outlive their batch in Python's oldest generation, whose collection Python
    runs only once it has grown by a quarter of the objects a Django process holds:
    meanwhile a run's peak memory grows with its batches (queueing notices for
    10,000,000 people peaked three times higher than for 100,000)."""
    if batches_done and batches_done % CYCLES_EVERY == 0:
        gc.collect()
