"""`make bench-context`: narrow briefs against one growing session, in prompt tokens.

The same change with N findings (one per file, N = 1, 2, 5, 10, 20) is fixed twice on the
scripted model sandbox, with identical scripted edits:

- narrow: one fix call per finding, each with only its own brief (what the loop does);
- single: one session that fixes them one after another, each brief sent after the whole
  conversation so far (the "single overworked assistant").

Prompt tokens are counted from the requests the sandbox recorded (its token count: words
and punctuation marks). Prints tokens per fixed finding for both, their ratio, and on its
last line `narrow_over_single_at_10=<ratio>`.
"""

import argparse
import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.agents.catalog import AgentSpec
from bot.agents.models import Turn, open_model_client
from bot.agents.models.fix import SYSTEM, FixReply, apply_edits, build_fix_brief, fix_finding
from bot.audit.findings import Finding
from bot.sandbox.models import Edit, ModelSandbox, Rule, Scenario

SIZES = (1, 2, 5, 10, 20)
KEY_VAR = "BENCH_CONTEXT_MODEL_KEY"
KEY = "bench-context-key"
CHECKED = (
    "    if count < 0:\n"
    '        raise ValueError("count must not be negative")\n'
    "    return sum(prices[:count])"
)
RULE = Rule(
    "negative-count",
    pattern=r"def \w+\(.*\bcount\b",
    unless=r"count < 0",
    category="correctness",
    severity="high",
    title="count is never checked for negative values",
    fixes=(Edit(search="    return sum(prices[:count])", replace=CHECKED),),
)


def module(i: int) -> str:
    """A small module of the change: one function with the finding, and some context."""
    helpers = "".join(
        f"\n\ndef helper_{i}_{k}(values: list[float]) -> float:\n"
        f'    """Helper {k} of module {i}."""\n    return sum(values) * {k}\n'
        for k in range(4)
    )
    return (
        f'"""Module {i} of the change."""\n\n\n'
        f"def total_{i}(prices: list[float], count: int) -> float:\n"
        "    return sum(prices[:count])\n" + helpers
    )


def findings(n: int) -> list[Finding]:
    return [
        Finding(
            "review",
            "correctness",
            "correctness",
            f"shop/m{i}.py",
            4,
            5,
            "[high] count is never checked for negative values",
            f"def total_{i}(prices: list[float], count: int) -> float:\n"
            "    return sum(prices[:count])",
        )
        for i in range(n)
    ]


def worktree(root: Path, n: int) -> Path:
    for i in range(n):
        path = root / "shop" / f"m{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(module(i), encoding="utf-8")
    return root


def fixed(root: Path, n: int) -> int:
    return sum("count < 0" in (root / "shop" / f"m{i}.py").read_text() for i in range(n))


@dataclass(frozen=True)
class Point:
    n: int
    narrow: float  # prompt tokens per fixed finding
    single: float

    @property
    def ratio(self) -> float:
        return self.narrow / self.single


async def narrow(spec: AgentSpec, root: Path, targets: Sequence[Finding]) -> None:
    """One brief per finding, nothing else in the conversation."""
    async with open_model_client(spec, environ={KEY_VAR: KEY}) as client:
        for finding in targets:
            await fix_finding(client, root, finding)


async def single(spec: AgentSpec, root: Path, targets: Sequence[Finding]) -> None:
    """One session: each brief follows every earlier brief and answer."""
    history: list[Turn] = []
    async with open_model_client(spec, environ={KEY_VAR: KEY}) as client:
        for finding in targets:
            text = (root / finding.path).read_text(encoding="utf-8")
            brief = build_fix_brief(finding, text, "", 20, [finding.path])
            reply = await client.structured(SYSTEM, brief, FixReply, purpose="fix", history=history)
            apply_edits(root, reply.value.edits, [finding.path])
            history += [Turn("user", brief), Turn("assistant", reply.raw)]


async def measure(models: ModelSandbox, spec: AgentSpec, n: int, workdir: Path) -> Point:
    per_finding: dict[str, float] = {}
    for name, run in (("narrow", narrow), ("single", single)):
        root = worktree(workdir / f"{name}-{n}", n)
        before = len(models.hub.requests)
        await run(spec, root, findings(n))
        requests = models.hub.requests[before:]
        done = fixed(root, n)
        if done != n:
            raise SystemExit(f"{name} fixed {done} of {n} findings: the bench is broken")
        per_finding[name] = sum(r.prompt_tokens for r in requests) / done
    return Point(n, per_finding["narrow"], per_finding["single"])


def table(points: Sequence[Point]) -> str:
    lines = [
        "| N | narrow tokens/finding | single session tokens/finding | narrow / single |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {p.n} | {p.narrow:.0f} | {p.single:.0f} | {p.ratio:.2f} |" for p in points]
    return "\n".join(lines)


async def main(sizes: Sequence[int]) -> None:
    with (
        ModelSandbox.start(Scenario([RULE]), api_key=KEY) as models,
        tempfile.TemporaryDirectory(prefix="bench-context-") as tmp,
    ):
        spec = AgentSpec.model_validate(
            {
                "name": "fixer",
                "kind": "openai",
                "model": "bench-fixer",
                "base_url": models.openai_base_url,
                "api_key_env": KEY_VAR,
                "timeout_s": 30,
                "max_retries": 0,
            }
        )
        points = [await measure(models, spec, n, Path(tmp)) for n in sizes]
    print(table(points))
    first, last = points[0], points[-1]
    print(
        f"growth from N={first.n} to N={last.n}: narrow x{last.narrow / first.narrow:.2f}, "
        f"single x{last.single / first.single:.2f}"
    )
    at_10 = next((p for p in points if p.n == 10), points[-1])
    print(f"narrow_over_single_at_10={at_10.ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    asyncio.run(main(parser.parse_args().sizes))
