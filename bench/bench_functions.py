"""The functions bench/python.py gives every pool: the same Python code in
corral's function workers (the *_text forms: str in, str out) and in
multiprocessing's pools (ints)."""


def tiny(n):
    return n * (n - 1) // 2


def cpu(n):
    """About a millisecond of Python arithmetic."""
    total = 0
    for i in range(20_000):
        total += (i * n) % 7
    return total


def tiny_text(task):
    return str(tiny(int(task)))


def cpu_text(task):
    return str(cpu(int(task)))
