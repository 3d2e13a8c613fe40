"""Model agents: one client over the official SDKs, and the auditor, fixer and verifier calls.

async with open_model_client(catalog["gpt-review"]) as client:
    result = await review_file(client, FileChange(path, text, changed_lines))
"""

from bot.agents.models.calls import (
    ModelAuthError,
    ModelCall,
    ModelConfigError,
    ModelError,
    ModelReplyError,
    ModelRequestError,
    ModelUnavailable,
    Reply,
    Turn,
    total_cost,
)
from bot.agents.models.client import ModelClient, open_model_client
from bot.agents.models.fix import EditRefused, FixFailed, FixResult, apply_edits, fix_finding
from bot.agents.models.retry import RetryPolicy
from bot.agents.models.review import FileChange, PullRequestText, ReviewResult, review_file
from bot.agents.models.verify import Verdict, verify_fix

__all__ = [
    "EditRefused",
    "FileChange",
    "FixFailed",
    "FixResult",
    "ModelAuthError",
    "ModelCall",
    "ModelClient",
    "ModelConfigError",
    "ModelError",
    "ModelReplyError",
    "ModelRequestError",
    "ModelUnavailable",
    "PullRequestText",
    "Reply",
    "RetryPolicy",
    "ReviewResult",
    "Turn",
    "Verdict",
    "apply_edits",
    "fix_finding",
    "open_model_client",
    "review_file",
    "total_cost",
    "verify_fix",
]
