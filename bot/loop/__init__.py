"""The per-PR review loop: triggers, the reconciler, fix tasks, and what it tells people."""
