"""A producer and consumers with a sentinel, in corral: the workers are the
consumers, and leaving the `with` (shutdown) is the sentinel: it returns once
every task has its result.

    queue = multiprocessing.Queue()                 # before
    for item in items: queue.put(item)
    for _ in consumers: queue.put(None)             # the sentinels
"""
import corral

results = []
with corral.Executor("squares") as pool:
    for item in range(100):                         # the producer
        pool.submit(str(item)).add_done_callback(lambda f: results.append(int(f.result())))
print("consumed", len(results), "items; total", sum(results))
