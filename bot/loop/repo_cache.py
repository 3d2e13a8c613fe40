"""A repository's metadata, config files and labels, read from GitHub once for every job.

Every reconcile, fix task and command needs the repository (its default branch, clone URL,
merge methods) and its config (its own `.github/review-loop.yml`, laid over its owner's
`.github` repository's): read from GitHub each time, that was 3 requests a job, two of them
404s when the owner has no `.github` repository, and each reconcile listed the labels. The
answers are kept in the database (`bot.github.memo`), so every process shares them, for
`github_cache_ttl_s`; a push that changes a config file (handlers/push.py) forgets them at
once, so a mended config applies to the next job. A 404 is kept like a file: the absence of
the owner's `.github` repository is remembered too. A change GitHub sends no event for here
(the default branch renamed, merge methods changed in Settings) is seen within the TTL.
The names of the labels known to be on a repository are kept until forgotten, whatever the
TTL: the repository's labels are listed once per deployment, each of the bot's made once.
A PR branch whose protection refused a fix PR's merge for a missing required status check is
remembered for the TTL too, so the next fix PRs into it get their check run before the merge,
not after a refused one (`bot/loop/fix/fix_check.py`); so is one that refused a fix pushed
onto it over git (`bot/loop/fix/push_merge.py`), whose fixes go through the merge API
meanwhile. GitHub sends no event here when the protection changes, so a lifted one is seen
within the TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

from bot.engine.database import Pool
from bot.github.memo import Memo
from bot.github.records import RepoInfo
from bot.github.repo_api import RepoAPI
from bot.repo_config import ORG_CONFIG_REPO, RepoConfig, load_repo_config
from bot.runtime import Runtime


def _repo_key(repo: str) -> str:
    return f"repo:{repo}"


def _file_key(repo: str, path: str, ref: str | None) -> str:
    return f"file:{repo}:{ref or ''}:{path}"


def _org_file_key(owner: str, path: str) -> str:
    return f"org-file:{owner}:{path}"


def _check_key(repo: str, branch: str) -> str:
    return f"requires-check:{repo}:{branch}"


def _push_refused_key(repo: str, branch: str) -> str:
    return f"push-refused:{repo}:{branch}"


class RepoCache:
    """What `api`'s repository looks like, through the shared cache (`ttl_s` 0: no cache)."""

    def __init__(self, api: RepoAPI, memo: Memo) -> None:
        self.api = api
        self._memo = memo
        self._labels = memo.durable()

    async def repo(self) -> RepoInfo:
        key = _repo_key(self.api.full_name)
        found = await self._memo.get(key)
        if found is not None:
            data = dict(found)
            return RepoInfo(**{**data, "merge_methods": tuple(data["merge_methods"])})
        info = await self.api.get_repo()
        await self._memo.put(key, asdict(info))
        return info

    async def config(self) -> RepoConfig:
        """The config in force: the repository's file on its default branch over its
        owner's (`RepoConfigError` when it does not validate)."""
        return await load_repo_config(self, (await self.repo()).default_branch)

    async def ensure_labels(self, specs: Mapping[str, tuple[str, str]]) -> None:
        """The labels of `specs` made on the repository, each once per deployment: the
        database keeps the names known to be there, without expiry, so only a new one is
        created, and the repository's labels are listed only when none are kept (a label a
        person deletes later comes back with the next labelling, in GitHub's default colour:
        GitHub creates the labels an issue is given, colour ededed, no description,
        https://github.com/github/docs/issues/35718)."""
        key = f"labels:{self.api.full_name}"
        found = await self._labels.get(key)
        known = {str(n).lower() for n in found["names"]} if found is not None else None
        missing = {n: s for n, s in specs.items() if known is None or n.lower() not in known}
        if not missing:
            return
        if known is None:
            known = await self.api.ensure_labels(missing)
        else:
            await self.api.create_labels(missing)
        await self._labels.put(key, {"names": sorted(known | {n.lower() for n in missing})})

    async def requires_check(self, branch: str) -> bool:
        """Whether a merge into `branch` was refused for a missing required status check
        (within the TTL)."""
        return await self._memo.get(_check_key(self.api.full_name, branch)) is not None

    async def remember_requires_check(self, branch: str) -> None:
        await self._memo.put(_check_key(self.api.full_name, branch), {"required": True})

    async def push_refused(self, branch: str) -> str | None:
        """What GitHub said when it refused a push of a fix onto `branch` (within the TTL):
        fixes go into that branch through the merge API meanwhile. None: not refused."""
        found = await self._memo.get(_push_refused_key(self.api.full_name, branch))
        return None if found is None else str(found["reason"])

    async def remember_push_refused(self, branch: str, reason: str) -> None:
        await self._memo.put(_push_refused_key(self.api.full_name, branch), {"reason": reason})

    # the ConfigFiles protocol of bot.repo_config

    async def read_file(self, path: str, ref: str | None = None) -> str | None:
        key = _file_key(self.api.full_name, path, ref)
        found = await self._memo.get(key)
        if found is not None:
            return None if found["text"] is None else str(found["text"])
        text = await self.api.read_file(path, ref)
        await self._memo.put(key, {"text": text})
        return text

    async def read_org_file(self, path: str) -> str | None:
        key = _org_file_key(self.api.owner, path)
        found = await self._memo.get(key)
        if found is not None:
            return None if found["text"] is None else str(found["text"])
        text = await self.api.read_org_file(path)
        await self._memo.put(key, {"text": text})
        return text


def repo_cache(runtime: Runtime, api: RepoAPI) -> RepoCache:
    """`api`'s repository through the runtime's shared cache."""
    return RepoCache(api, Memo(runtime.pool, runtime.settings.github_cache_ttl_s))


async def forget_repo(pool: Pool, repo: str) -> None:
    """Forget what was read of `repo`; of an owner's `.github` repository, also the
    organisation-wide config every repository of that owner inherits."""
    owner, name = repo.split("/", 1)
    patterns = [_repo_key(repo), f"file:{repo}:%"]
    if name == ORG_CONFIG_REPO:
        patterns.append(_org_file_key(owner, "%"))
    await Memo(pool, 0).forget(*patterns)
