import os

from hypothesis import HealthCheck, settings

# CI runs derandomised so that a green run stays green; locally each run explores anew.
settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
