"""Start or join a Ray cluster the same way in every job.

`ray_address` (every job config has it) picks what a job does:
    "" (and no RAY_ADDRESS env var), or "local": start a private local cluster for this job, whatever Ray's temp dir
        (default /tmp/ray) holds. A bare `ray.init()` would instead join the cluster named by the
        `ray_current_cluster` file there, even a dead head or another user's cluster.
    "auto", "host:port", "ray://host:port", or "" with RAY_ADDRESS set (as under `ray job submit`): join that
        cluster, without resource counts (Ray refuses num_cpus/num_gpus when joining).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

LOCAL = "local"
"""`ray.init(address=...)` value that always starts a new local cluster and never reads `ray_current_cluster`."""

JOIN_FIX = "start the cluster with `ray start --head` or leave ray_address empty to start a local one"
"""The advice every failed join ends with."""


def cluster_to_join(address: str) -> str:
    """The address `init_ray(address)` joins: `address` itself, else the RAY_ADDRESS env var; "" means start a
    private local cluster (also for `address="local"`)."""
    if address == LOCAL:
        return ""
    return address or os.environ.get("RAY_ADDRESS", "")


def init_ray(address: str, *, num_cpus: int | None = None) -> bool:
    """Join the cluster `address` names ("auto", "host:port", "ray://...", or RAY_ADDRESS when `address` is ""), or
    start a private local cluster with `num_cpus` CPUs and no dashboard when there is nothing to join.

    Returns True when this call started a local cluster (the job should `ray.shutdown()` it at the end), False when
    it joined one or Ray was already initialized. A failed join raises SystemExit naming `ray_address` and the fix.
    """
    if ray.is_initialized():
        return False
    target = cluster_to_join(address)
    if target:
        join_cluster(target, address)
        return False
    ray.init(address=LOCAL, num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)
    return True


def join_cluster(target: str, address: str) -> None:
    """`ray.init(address=target)` with no resource counts; SystemExit with the config key and the fix if it fails.

    `address` is the configured ray_address (may be "" when `target` came from RAY_ADDRESS), for the message only.
    """
    try:
        ray.init(address=target, log_to_driver=True)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as err:
        raise SystemExit(f"could not join the Ray cluster at {_describe(target, address)}: "
                         f"{type(err).__name__}: {err}\n{JOIN_FIX}.") from err


def _describe(target: str, address: str) -> str:
    """Where the join address came from, e.g. `ray_address=auto` or `RAY_ADDRESS=10.0.0.1:6379 (ray_address empty)`."""
    env = os.environ.get("RAY_ADDRESS", "")
    if address:
        suffix = f" (RAY_ADDRESS={env} takes precedence for auto)" if address == "auto" and env else ""
        return f"ray_address={address}{suffix}"
    return f"RAY_ADDRESS={target} (ray_address empty)"


@contextmanager
def ray_session(address: str, *, num_cpus: int | None = None, needed: bool = True) -> Iterator[None]:
    """The start-Ray / shutdown part of every job: `init_ray(address)` when the job `needed` Ray, and
    `ray.shutdown()` at the end when that call started a local cluster (a joined cluster is left running)."""
    started = init_ray(address, num_cpus=num_cpus) if needed else False
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_one_task(fn, *args, address: str, num_cpus: int):
    """`fn(*args)` as one Ray task holding `num_cpus` CPUs, on the cluster `init_ray(address)` joins or starts (a
    cluster it starts is stopped afterwards); returns the task's result."""
    with ray_session(address, num_cpus=num_cpus):
        return ray.get(ray.remote(fn).options(num_cpus=num_cpus).remote(*args))
