"""multiprocessing.Value and Array, in corral: the job's shared memory,
counted into by its workers (tasks.count_words) and read from anywhere.

    words = multiprocessing.Value("L", 0)          # before, in each worker:
    with words.get_lock():                         #   a lock per update
        words.value += len(line.split())
"""
import corral

lines = ["the quick brown fox", "jumps over the lazy dog"] * 500
with corral.Executor("wordcount") as pool:
    list(pool.map(lines))
shared = corral.Client().shared("wordcount")
print("words:", shared["values"]["words"])
print("by length:", shared["arrays"]["lengths"])
