import os

from hypothesis import HealthCheck, settings

# CI runs derandomised so that a green run stays green; locally each run explores anew.
settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def descendants() -> dict[int, str]:
    """This process's descendants by pid, less multiprocessing's resource tracker (it lives as
    long as the test process): what a test compares before and after to find leaked processes."""
    import psutil

    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            command = " ".join(p.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "resource_tracker" not in command:
            out[p.pid] = command
    return out
