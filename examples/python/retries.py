"""Retries with backoff, in corral: no loop of your own. The job's
queue.retry runs a failed task again after a backoff, up to max_attempts.

    for attempt in range(20):                       # before
        try: return flaky(item)
        except Exception: time.sleep(0.05 * 2 ** attempt)
"""
import corral

client = corral.Client()
results = list(client.submit("flaky", [f"item {n}" for n in range(20)]))
ok = [r for r in results if r.ok]
print(f"{len(ok)} of {len(results)} ok, after up to {max(r.attempts for r in results)} attempts")
