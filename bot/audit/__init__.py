"""Auditors, SARIF parsing, findings and their fingerprints (no GitHub, no database)."""

from bot.audit.diffs import changed_lines, filter_ignored, filter_to_changed
from bot.audit.findings import Finding
from bot.audit.runners import AUDITORS, AuditError, Auditor, audit, run_ruff, run_ruff_format
from bot.audit.sarif import parse_sarif

__all__ = [
    "AUDITORS",
    "AuditError",
    "Auditor",
    "Finding",
    "audit",
    "changed_lines",
    "filter_ignored",
    "filter_to_changed",
    "parse_sarif",
    "run_ruff",
    "run_ruff_format",
]
