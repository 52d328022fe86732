#!/usr/bin/env python3
"""A corral worker in Python: counts the words of each task.

Run it under corrald with a pipe channel, e.g.

    jobs:
      words:
        command: [python3, examples/python_worker.py]
        workers: 2
        channel: pipe
        pipe: {fds: extra, framing: length}

    corralctl submit words --data "the quick brown fox" --wait
    -> {"id": ..., "status": "ok", "result": "4", ...}

A task of only whitespace fails ("no words"), to show a failed result. The
length framing (the default with fds: extra) reports it as "failed"; under
framing: lines, which has no status, the worker exits on it (exit 3) and
corrald charges the task like a crash, so it never comes back "ok".
The SDK is the corral package's corral.worker (python/ in the source tree;
`import corral_worker` is its first name); this file finds it from the
source tree, where the .deb installs it (/usr/lib/python3/dist-packages,
on Debian's python3 path), or from PYTHONPATH.
"""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_here, "..", "python"))

import corral_worker  # noqa: E402


def count_words(task):
    words = task.split()
    if not words:
        raise ValueError("no words")
    return str(len(words))


if __name__ == "__main__":
    sys.exit(corral_worker.serve(count_words))
