"""The corral worker SDK under its first name: `import corral_worker` is
corral.worker (serve, job_name, worker_index, stop_after_this_task)."""
from corral.worker import job_name, serve, stop_after_this_task, worker_index  # noqa: F401

__all__ = ["serve", "job_name", "worker_index", "stop_after_this_task"]
