"""The services a cluster campaign uses, started and stopped on one machine: a private
``redis-server`` for the shared example database, and a local Dask cluster.

Both are context managers that always stop (and wait for) what they started: the tests use
them, and so does ``tsdcheck fuzz --cluster local``.  On a real cluster they are started by
hand instead (docs/campaigns.md gives the commands).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tsdcheck.drivers.base import EnvironmentProblem

CLUSTER_EXTRA = "pip install 'tsdcheck[cluster]'"
STARTUP = 10.0
"""Seconds a service gets to answer before starting it counts as failed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_command(directory: Path, port: int) -> list[str]:
    """redis-server on 127.0.0.1 only, appending every write to ``directory`` so that a restart
    (of the server, or of a campaign) resumes from what was stored."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise EnvironmentProblem("redis-server not found: install the Debian package redis-server")
    where = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    return [exe, *where, "--appendonly", "yes", "--save", "", "--daemonize", "no"]


@contextmanager
def redis_server(directory: Path, port: int | None = None) -> Iterator[str]:
    """A private redis-server, yielding its ``redis://`` URL; stopped when the block ends."""
    try:
        from redis import Redis
        from redis.exceptions import ConnectionError as RedisDown
    except ImportError as e:
        raise EnvironmentProblem(f"Redis needs the cluster extra: {CLUSTER_EXTRA}") from e
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = (directory / "redis.log").open("w")
    server = subprocess.Popen(redis_command(directory, port), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if server.poll() is not None:
                raise EnvironmentProblem(f"redis-server exited at start (see {directory / 'redis.log'})")
            try:
                with Redis.from_url(url) as probe:
                    probe.ping()
                break
            except RedisDown:
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(f"redis-server did not answer on port {port}") from None
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(STARTUP)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@contextmanager
def dask_client(address: str, workers: int) -> Iterator[Any]:
    """A Dask client: of the scheduler at ``address``, or of a cluster of ``workers`` local
    worker processes (one task each at a time) when ``address`` is ``local``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:
        raise EnvironmentProblem(f"--cluster needs the cluster extra: {CLUSTER_EXTRA}") from e
    if address != "local":
        with Client(address, timeout=f"{STARTUP}s") as client:
            yield client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
