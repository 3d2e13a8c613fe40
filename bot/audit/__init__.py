"""Auditors: the analyzers that produce findings, SARIF, fingerprints, changed lines."""
