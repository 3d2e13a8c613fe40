"""The repository's `.github/review-loop.yml`, read from the default branch only.

A pull request cannot change the rules it is judged by. When the repository has no config,
the organisation's `.github` repository is asked, as GitHub does for community files.
"""

from githubkit.exception import RequestFailed

from bot.ghapi import RepoAPI
from bot.ghmodels import RepoInfo
from bot.repo_config import CONFIG_PATH, RepoConfig, parse_repo_config


async def load_repo_config(api: RepoAPI, repo: RepoInfo) -> RepoConfig:
    text = await api.read_file(CONFIG_PATH, ref=repo.default_branch)
    if text is None and repo.full_name.split("/")[1] != ".github":
        org_repo = RepoAPI(
            api.gh, f"{repo.owner_login}/.github", app_id=api.app_id, bot_login=api.bot_login
        )
        try:
            org_info = await org_repo.get_repo()
            text = await org_repo.read_file(CONFIG_PATH, ref=org_info.default_branch)
        except RequestFailed as exc:
            if exc.response.status_code not in (403, 404):
                raise
            text = None
    return parse_repo_config(text)
