"""GET /ui: the operator's dashboard, server-rendered from the loop's tables (no JavaScript)."""
