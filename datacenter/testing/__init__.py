"""The testing wing: the fault harness, crash enumeration and the chaos run.

Production code keeps only the injection points (:mod:`datacenter.injection`);
everything that fails, stalls or kills on purpose lives here.
"""

from datacenter.testing.chaos import ChaosRun
from datacenter.testing.crashpoints import CrashReport, enumerate_crashes, run_child
from datacenter.testing.faults import FaultConfig, FaultInjector, FaultType, corrupt_data

__all__ = ["ChaosRun", "CrashReport", "FaultConfig", "FaultInjector", "FaultType",
           "corrupt_data", "enumerate_crashes", "run_child"]
