"""multiprocessing.Pool.map, in corral: the job's workers are the pool.

    with multiprocessing.Pool(2) as pool:          # before
        squares = pool.map(square, range(10000))
"""
import corral

with corral.Executor("squares") as pool:
    squares = list(pool.map(str(n) for n in range(10_000)))
print("sum of squares below 10000:", sum(int(s) for s in squares))
