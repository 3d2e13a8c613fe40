"""Tests of the pure review-loop core: findings, auditors, config, routing, ledger."""
