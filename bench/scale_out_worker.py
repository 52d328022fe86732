"""A corral worker in Python for bench/scale_out.py: the peers' task function
(n * (n - 1) // 2 of a decimal payload) behind corral_worker.serve."""
import corral_worker


def tiny(task):
    n = int(task)
    return str(n * (n - 1) // 2)


if __name__ == "__main__":
    raise SystemExit(corral_worker.serve(tiny))
