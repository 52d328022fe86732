"""Monitoring, in corral: the daemon's counts instead of polling psutil.

    for p in psutil.process_iter(): p.cpu_percent()  # before
"""
import corral

client = corral.Client()
for worker in client.status("squares"):
    print(worker["name"], worker["state"], f"{worker['rss_bytes'] / 1e6:.1f} MB",
          f"{worker['cpu_percent']:.0f}% CPU")
stats = client.stats("squares")
print("squares:", stats["ok"], "ok,", stats["failed"], "failed,", stats["queued"], "queued")
