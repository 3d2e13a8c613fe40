"""A local scripted model server, the GitHub sandbox's twin: OpenAI, Anthropic and Gemini wires."""

from bot.sandbox.models.app import ModelHub, RecordedRequest, build_app
from bot.sandbox.models.asks import count_tokens
from bot.sandbox.models.faults import ModelFault
from bot.sandbox.models.scenario import Call, Edit, Rule, Say, Scenario
from bot.sandbox.models.server import ModelSandbox, run_model_sandbox

__all__ = [
    "Call",
    "Edit",
    "ModelFault",
    "ModelHub",
    "ModelSandbox",
    "RecordedRequest",
    "Rule",
    "Say",
    "Scenario",
    "build_app",
    "count_tokens",
    "run_model_sandbox",
]
