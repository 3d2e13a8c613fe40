"""`python -m bench.writes`: the demo PR's GitHub writes, per endpoint, and writes per finding.

Runs `review-loop demo` (sandbox GitHub over HTTP, real git, PostgreSQL) and reads the
sandbox's request log: every POST/PATCH/PUT/DELETE the bot sent, by route template and answer
status, and which of them GitHub counts as content-creating (see `bot.github.throttle`).
"""

import argparse
import asyncio
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.fanout import database_server, fresh_database
from bot.github.throttle import creates_content_route

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
LABEL_CREATE = ("POST", "/repos/{owner}/{repo}/labels")


def write_histogram(requests: Iterable[dict[str, Any]]) -> Counter[tuple[str, str, int]]:
    """(method, route, status) -> count, for the writes among `requests` (tokens excluded:
    GitHub counts no write for them)."""
    return Counter(
        (r["method"], r["route"], r["status"])
        for r in requests
        if r["method"] in WRITES and not r["route"].endswith("/access_tokens")
    )


def render_histogram(histogram: Counter[tuple[str, str, int]]) -> str:
    lines = ["| writes | content-creating | method | route | status |", "|---|---|---|---|---|"]
    for (method, route, status), n in sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0])):
        creates = "yes" if creates_content_route(method, route) else "no"
        lines.append(f"| {n} | {creates} | {method} | `{route}` | {status} |")
    return "\n".join(lines)


async def main_async(keep: bool) -> int:
    from bot.demo.run import run_demo

    root = Path(tempfile.mkdtemp(prefix="review-loop-writes-"))
    try:
        # A fresh database each run: what the bot keeps of GitHub (labels known, comment ids)
        # would otherwise be kept from an earlier run's sandbox, and its writes not counted.
        with database_server(root) as admin, fresh_database(admin) as url:
            result = await run_demo(root, lambda line: None, database_url=url, requests=True)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    histogram = write_histogram(result["requests"])
    writes = sum(histogram.values())
    creating = sum(n for (m, r, _), n in histogram.items() if creates_content_route(m, r))
    findings = result["findings_filed"]
    print(f"demo PR: state {result['state']}, {result['rounds']} round(s), {findings} findings")
    print(render_histogram(histogram))
    print(f"requests={len(result['requests'])} writes={writes} content_creating={creating}")
    # The labels are made once per repository (bot.loop.repo_cache): a repository the bot
    # already works on pays the rest only.
    labels = sum(n for (m, r, _), n in histogram.items() if (m, r) == LABEL_CREATE)
    per = max(findings, 1)
    print(
        f"on a repository the bot already works on: writes={writes - labels} "
        f"({(writes - labels) / per:.2f} per finding), content_creating={creating - labels} "
        f"({(creating - labels) / per:.2f} per finding)"
    )
    print(f"writes_per_finding={writes / per:.2f}")
    return 0 if result["state"] == "ready" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(main_async(args.keep))


if __name__ == "__main__":
    raise SystemExit(main())
