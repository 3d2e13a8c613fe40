"""A local GitHub for the demo and end-to-end tests: REST, git over HTTP, signed webhooks."""

from bot.sandbox.driver import Driver, DriverError
from bot.sandbox.faults import FaultSettings
from bot.sandbox.server import Sandbox, run_sandbox

__all__ = ["Driver", "DriverError", "FaultSettings", "Sandbox", "run_sandbox"]
