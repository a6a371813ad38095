"""Start or join a Ray cluster the same way in every job."""

from __future__ import annotations

import os

import ray


def init_ray(address: str, *, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` ("auto" or "ray://..."/"host:port"), or start a local one when it is "".

    Under `ray job submit` the driver already has RAY_ADDRESS set, and `ray.init()` joins that cluster.
    Returns True when this call started a local cluster (the job should `ray.shutdown()` it at the end).
    """
    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or None, log_to_driver=True)
        return False
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    return True


def run_one_task(fn, *args, address: str, num_cpus: int):
    """`fn(*args)` as one Ray task holding `num_cpus` CPUs, on the cluster `init_ray(address)` joins or starts (a
    cluster it starts is stopped afterwards); returns the task's result."""
    started = init_ray(address, num_cpus=num_cpus)
    try:
        return ray.get(ray.remote(fn).options(num_cpus=num_cpus).remote(*args))
    finally:
        if started:
            ray.shutdown()
