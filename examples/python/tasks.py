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
