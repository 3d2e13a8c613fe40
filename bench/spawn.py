"""`make bench-spawn`: what a fix task's worktree spawn costs next to a raw `git worktree add`.

One run generates a repository of about 2,000 files with some history (see `generate`),
makes the bot's bare mirror of it, then measures, interleaved, N repetitions of:

- raw: `git worktree add -B <branch> <path> <sha>` on the mirror, nothing else;
- cold: the bot's spawn with no warm worktree, the git calls a fix task makes in this order
  (`bot.loop.fix.runner`: `Mirrors.ensure` for the task's commits, the task branch looked up
  on the mirror, no warm worktree to claim, `Mirrors.add_worktree`), the PR head already in
  the mirror (a later task of the round);
- cold+fetch: the same, the first task of a round (the PR head is new: the mirror fetches);
- warm: claiming a worktree pre-warmed at the PR head (`WarmPool.claim`);
- raw x4 and round x4: four at once, the wall time of all four; a round's four tasks spawn
  on a new PR head (one of them fetches, the others wait for it on the mirror lock).

Then what one fix's verification audits with ruff and ruff format: the whole tree, or the
one file a fix touched.

Everything is real git on a local `file://` origin; the cleanup after each spawn is not
timed. The last line is `spawn_over_raw=<cold median / raw median>`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.audit.runners import audit
from bot.git.cmd import git
from bot.git.worktrees import Mirrors, Worktree
from bot.loop.fix.branch import branch_sha
from bot.loop.warm import WarmPool

REPO = "bench/big"
FILES = 2000
FILE_BYTES = 3000  # about: functions with docstrings of pseudo-random words
FINDING_EVERY = 50
DIRS = 40
COMMITS = 150  # each rewrites a slice of the files (history for the pack)
CHANGED_PER_COMMIT = 100
FULL_REPS = 12
QUICK_REPS = 6
WORDS = (
    "value index result items config table record handler buffer stream parser token "
    "request response client server mirror branch commit review finding issue task worker "
    "queue lease retry budget agent audit report check label marker payload event"
).split()


@dataclass(frozen=True)
class Generated:
    origin: Path
    url: str
    head: str
    files: int
    pack_bytes: int
    commits: int


def _file_text(rng: random.Random, seed: int) -> str:
    """About `FILE_BYTES` of formatted, lint-clean Python; one file in `FINDING_EVERY` has an
    unused import (a finding for ruff)."""
    parts = [f'"""Module {seed}."""\n']
    if seed % FINDING_EVERY == 0:
        parts.append("\nimport os\n")
    size, n = 0, 0
    while size < FILE_BYTES:
        name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{n}"
        words = " ".join(rng.choice(WORDS) for _ in range(6))
        part = (
            f"\n\ndef {name}(a, b):\n"
            f'    """The {words}."""\n'
            f"    return a * {rng.randrange(1000)} + b - {rng.randrange(1000)}\n"
        )
        parts.append(part)
        size += len(part)
        n += 1
    return "".join(parts)


def generate(root: Path, files: int = FILES, commits: int = COMMITS, seed: int = 1) -> Generated:
    """A bare origin of `files` Python files of about 3 KB in `DIRS` directories and
    `commits` commits (each rewrites `CHANGED_PER_COMMIT` files), made with git fast-import."""
    rng = random.Random(seed)  # noqa: S311 - reproducible text, not secrets
    origin = root / "origin.git"
    subprocess.run(["git", "init", "--bare", "--quiet", "-b", "main", str(origin)], check=True)
    stream: list[bytes] = []

    def blob(path: str, text: str) -> None:
        data = text.encode()
        stream.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    paths = [f"pkg{i % DIRS:02d}/mod_{i:04d}.py" for i in range(files)]
    for n in range(commits):
        message = f"commit {n}".encode()
        stream.append(
            f"commit refs/heads/main\ncommitter Bench <b@example.com> {1700000000 + n} +0000\n"
            f"data {len(message)}\n".encode()
            + message
            + b"\n"
        )
        for i in range(files) if n == 0 else rng.sample(range(files), CHANGED_PER_COMMIT):
            blob(paths[i], _file_text(rng, i))
        stream.append(b"\n")
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=origin, input=b"".join(stream), check=True
    )
    subprocess.run(["git", "repack", "-adq"], cwd=origin, check=True)
    head = (
        subprocess.run(
            ["git", "rev-parse", "refs/heads/main"], cwd=origin, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )
    pack_bytes = sum(p.stat().st_size for p in (origin / "objects" / "pack").glob("*.pack"))
    return Generated(origin, origin.as_uri(), head, files, pack_bytes, commits)


def _new_head(gen: Generated, n: int) -> str:
    """A new commit on origin's main touching one file (a PR head the mirror lacks)."""
    text = f"# change {n}\n".encode()
    stream = (
        f"commit refs/heads/main\ncommitter Bench <b@example.com> {1800000000 + n} +0000\n"
        f"data 6\nchange\nfrom refs/heads/main^0\n"
        f"M 100644 inline pkg00/new_{n}.py\ndata {len(text)}\n".encode()
        + text
        + b"\n\n"
    )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=gen.origin, input=stream, check=True)
    return (
        subprocess.run(
            ["git", "rev-parse", "refs/heads/main"], cwd=gen.origin, check=True, capture_output=True
        )
        .stdout.decode()
        .strip()
    )


async def _timed(work: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


ONE_FILE = ["pkg00/mod_0000.py"]  # what a fix of one finding touches
PARALLEL = 4  # tasks of one round spawning at once (the "x4" rows: wall time of all four)
KINDS = ("raw", "cold", "cold+fetch", "warm", f"raw x{PARALLEL}", f"round x{PARALLEL}")


@dataclass
class Results:
    spawns: dict[str, list[float]]
    audits: dict[str, list[float]]

    @property
    def ratio(self) -> float:
        return statistics.median(self.spawns["cold"]) / statistics.median(self.spawns["raw"])


async def _measure(
    reps: int, files: int, kinds: tuple[str, ...] = KINDS, *, audits_too: bool = True
) -> Results:
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    audits: dict[str, list[float]] = {"whole tree": [], "touched file": []}
    with tempfile.TemporaryDirectory(prefix="review-loop-bench-spawn-") as scratch:
        root = Path(scratch)
        gen = generate(root, files=files)
        mirrors = Mirrors(root / "data")
        warm = WarmPool(mirrors)
        mirror = await mirrors.ensure(REPO, gen.url, None)
        print(
            f"repository: {gen.files} files, {gen.commits} commits, "
            f"pack {gen.pack_bytes / 1e6:.1f} MB"
        )

        async def raw_add(name: str) -> None:
            path = root / "raw" / name
            await git("worktree", "add", "--quiet", "-B", f"raw/{name}", str(path), gen.head,
                      cwd=mirror)  # fmt: skip

        async def raw_cleanup(name: str) -> None:
            await git("worktree", "remove", "--force", str(root / "raw" / name), cwd=mirror)
            await git("branch", "-D", "--quiet", f"raw/{name}", cwd=mirror)

        async def raw(names: list[str]) -> float:
            seconds, _ = await _timed(lambda: asyncio.gather(*(raw_add(n) for n in names)))
            for name in names:
                await raw_cleanup(name)
            return seconds

        async def spawn(name: str, sha: str, since: float) -> Worktree:
            """The git calls of a fix task's cold spawn, in the runner's order."""
            path = mirrors.worktree_path(REPO, f"task-{name}")
            branch = f"review-loop/pr-1/{name}"
            mirror = await mirrors.ensure(REPO, gen.url, None, want=(sha,), fresh_since=since)
            await branch_sha(mirror, branch)
            assert await warm.claim(REPO, mirror, sha, path, branch) is None
            return await mirrors.add_worktree(mirror, path, branch, sha)

        async def cold(names: list[str], sha: str, since: float) -> float:
            seconds, made = await _timed(
                lambda: asyncio.gather(*(spawn(n, sha, since) for n in names))
            )
            for wt in made:  # type: ignore[attr-defined]
                await mirrors.remove_worktree(wt)
            return seconds

        async def warmed(n: int) -> float:
            sha = _new_head(gen, 10_000 + n)
            await mirrors.ensure(REPO, gen.url, None)
            await warm.prepare(REPO, mirror, sha, None)
            path = mirrors.worktree_path(REPO, f"warm-{n}")
            seconds, wt = await _timed(
                lambda: warm.claim(REPO, mirror, sha, path, f"review-loop/pr-1/w{n}")
            )
            assert wt is not None
            await mirrors.remove_worktree(wt)  # type: ignore[arg-type]
            return seconds

        await raw(["first"])  # one unmeasured round of each, so no kind pays for first use
        await cold(["first"], gen.head, 0.0)
        for n in range(reps):
            turn = n % len(kinds)
            for kind in kinds[turn:] + kinds[:turn]:  # rotate the order each repetition
                many = [f"{n}-{i}" for i in range(PARALLEL)]
                if kind == "raw":
                    times[kind].append(await raw([str(n)]))
                elif kind == "cold":
                    # A later task of the round: planned before the mirror's last fetch.
                    times[kind].append(await cold([str(n)], gen.head, 0.0))
                elif kind == "cold+fetch":
                    # The round's first task: its PR head is new, the mirror must fetch.
                    sha = _new_head(gen, n)
                    times[kind].append(await cold([f"f{n}"], sha, time.time()))
                elif kind == "warm":
                    times[kind].append(await warmed(n))
                elif kind.startswith("raw"):
                    times[kind].append(await raw(many))
                else:
                    # A round's tasks at once on a new PR head: one fetch, four adds.
                    sha = _new_head(gen, 20_000 + n)
                    times[kind].append(await cold([f"p{m}" for m in many], sha, time.time()))
        # What one verification audits: the whole tree, or the fix's file (ruff, ruff format).
        wt = await spawn("audit", gen.head, 0.0)
        for _ in range(max(2, reps // 4) if audits_too else 0):
            seconds, _ = await _timed(lambda: audit(wt.path, ["ruff", "ruff-format"]))
            audits["whole tree"].append(seconds)
            seconds, _ = await _timed(lambda: audit(wt.path, ["ruff", "ruff-format"], ONE_FILE))
            audits["touched file"].append(seconds)
        await mirrors.remove_worktree(wt)
        shutil.rmtree(root / "raw", ignore_errors=True)
    return Results(times, audits)


def _table(results: Results) -> str:
    times = results.spawns
    rows = ["| spawn | n | median s | min s | max s | / raw |", "|---|---|---|---|---|---|"]
    for kind, values in times.items():
        median = statistics.median(values)
        raw = statistics.median(
            times[f"raw x{PARALLEL}" if kind.endswith(f" x{PARALLEL}") else "raw"]
        )
        rows.append(
            f"| {kind} | {len(values)} | {median:.3f} | {min(values):.3f} | {max(values):.3f} "
            f"| {median / raw:.2f} |"
        )
    rows += ["", "| verification audit | n | median s |", "|---|---|---|"]
    for kind, values in results.audits.items():
        rows.append(f"| {kind} | {len(values)} | {statistics.median(values):.3f} |")
    return "\n".join(rows)


def measure_spawn_ratio(quick: bool = False) -> float:
    """The cold spawn's median over the raw `git worktree add` median, on a generated
    2,000-file repository (quick: fewer repetitions, of these two kinds only)."""
    if quick:
        return asyncio.run(_measure(QUICK_REPS, FILES, ("raw", "cold"), audits_too=False)).ratio
    return asyncio.run(_measure(FULL_REPS, FILES)).ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPS} repetitions")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--files", type=int, default=FILES)
    args = parser.parse_args()
    reps = args.reps or (QUICK_REPS if args.quick else FULL_REPS)
    results = asyncio.run(_measure(reps, args.files))
    print(_table(results))
    print(f"spawn_over_raw={results.ratio:.2f}")


if __name__ == "__main__":
    main()
