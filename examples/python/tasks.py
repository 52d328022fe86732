"""The functions the examples' jobs serve (python3 -m corral.worker tasks:NAME)."""
import random


def square(task):
    n = int(task)
    return str(n * n)


def flaky(task):
    """Fails half the time: queue.retry runs it again after a backoff."""
    if random.random() < 0.5:
        raise RuntimeError(f"flaky failure on {task}")
    return task.upper()


def count_words(task):
    """Counts in the job's shared memory (channel: shm): every worker adds to
    the same cells, atomically."""
    import corral.shared
    words = task.split()
    corral.shared.value("words").add(len(words))
    lengths = corral.shared.array("lengths")
    for word in words:
        lengths.add(min(len(word), len(lengths) - 1))
    return str(len(words))
