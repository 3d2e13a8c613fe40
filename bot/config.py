"""Server settings: environment variables `REVIEW_LOOP_*` (also read from `.env`)."""

import difflib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WEBHOOK_BYTES = 25 * 1024 * 1024
PREFIX = "REVIEW_LOOP_"
# GitHub lets a delivery be redelivered for 3 days (github.com) or 7 (GitHub Enterprise
# Server): https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
MIN_RETENTION_DAYS = 7.0
# REVIEW_LOOP_* names that are not server settings: what the bot sets for an agent, the
# tests' database, the compose file's key group, and the pipe of secrets after the re-exec.
NOT_SETTINGS = frozenset(
    {
        "REVIEW_LOOP_BRIEF_FILE",
        "REVIEW_LOOP_TEST_DATABASE_URL",
        "REVIEW_LOOP_KEY_GID",
        "REVIEW_LOOP_SECRETS_FD",
    }
)


class ConfigError(Exception):
    """Settings that cannot work; the message says how to fix them."""


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class Settings(BaseSettings):
    """Everything the operator configures. Built once by the CLI or the app factory."""

    model_config = SettingsConfigDict(
        env_prefix="REVIEW_LOOP_", env_file=".env", extra="ignore", frozen=True
    )

    app_id: int | None = None
    # The App's slug; discovered with GET /app when unset.
    app_slug: str | None = None
    private_key: SecretStr | None = None
    private_key_path: Path | None = None
    webhook_secret: SecretStr | None = None
    github_url: str = "https://api.github.com"
    database_url: SecretStr | None = None
    data_dir: Path = Path(".review-loop")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.text
    worker_concurrency: int = Field(default=4, ge=1)
    agents_file: Path | None = None
    # Where `make agents` installed the coding-agent CLIs of presets (default:
    # <data_dir>/agents); a CLI not found there is looked for on PATH.
    agents_dir: Path | None = None
    github_timeout_s: float = Field(default=30.0, gt=0)
    # Stalled-job detection: a worker that has not heart-beaten for `stalled_after_s`
    # is presumed dead and its running jobs are retried by the reaper.
    heartbeat_s: float = Field(default=10.0, gt=0)
    stalled_after_s: float = Field(default=60.0, gt=0)
    reaper_interval_s: float = Field(default=15.0, gt=0)
    # How often an idle worker looks for jobs that came due (a job deferred for later, a
    # retry's backoff): new jobs wake it at once by LISTEN/NOTIFY, due ones only by this poll.
    job_poll_interval_s: float = Field(default=5.0, gt=0)
    # Fan-out: "auto" applies the spawn-tax rule; "parallel"/"inline" force a choice
    # (benchmarks). Priors stand in for measured costs until a repository has some.
    fanout: Literal["auto", "parallel", "inline"] = "auto"
    prior_spawn_s: float = Field(default=5.0, ge=0)
    prior_run_s: float = Field(default=10.0, ge=0)
    # Prepare a worktree at the PR head while the auditor runs (takes s off the critical path).
    prewarm: bool = True
    # How often workers look for failed webhook deliveries to redeliver (0 = never).
    redeliver_interval_s: float = Field(default=300.0, ge=0)
    # A delivery attempted this recently may still be arriving: the next pass looks at it.
    redeliver_grace_s: float = Field(default=30.0, ge=0)
    # Resync: PRs whose loop is not at rest and has not moved for `resync_quiet_s` get a
    # fresh reconcile, checked every `resync_interval_s` (0 = never).
    resync_interval_s: float = Field(default=300.0, ge=0)
    resync_quiet_s: float = Field(default=900.0, gt=0)
    # Sweep: every `sweep_interval_s` (and at start) list every open PR of every installation
    # and reconcile those whose head the loop has not seen (0 = never).
    sweep_interval_s: float = Field(default=3600.0, ge=0)
    # Finished work the database keeps, in days: finished jobs (with their events) and
    # dispatched deliveries (with their bodies) older than this are deleted by a worker's
    # hourly pass; 0 keeps everything. At least 7: a delivery GitHub may still redeliver
    # (3 days on github.com, 7 on GitHub Enterprise Server) must still be known by its id.
    retention_days: float = Field(default=14.0, ge=0)
    # A repository's metadata and config files, once read, are kept (in the database, for
    # every process) for this long; a push changing a config file forgets them at once.
    github_cache_ttl_s: float = Field(default=300.0, ge=0)
    # The ETag'd answers kept in memory for conditional reads (`bot/github/conditional.py`),
    # all installations together; one installation's are capped at 16 MiB as well.
    github_etag_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # GET /status lists recent deliveries (repositories, senders): off unless asked for.
    status_page: bool = False
    # GET /metrics: counts by state, in Prometheus' format; no repository or person named.
    metrics: bool = True
    # `review-loop worker` alone: serve this process's histograms on this port (0: off).
    # `serve` and `web` show their own on /metrics with the counts.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # GET /ui, the dashboard: off unless a token is set (bearer, or the login form's cookie).
    dashboard_token: SecretStr | None = None
    # Bots other than ourselves whose events are acted on (logins, e.g. "renovate[bot]").
    allowed_bots: list[str] = Field(default_factory=list)
    # Spacing between content-creating GitHub requests, per installation.
    write_interval_s: float = Field(default=1.0, ge=0)
    # GitHub's secondary limits on content creation, per installation.
    writes_per_minute: int = Field(default=80, ge=1)
    writes_per_hour: int = Field(default=500, ge=1)
    # The window writes_per_minute counts in: GitHub's minute. Tests shorten it, together with
    # the sandbox's `creation_window_s`, to check the throttle without waiting minutes.
    write_minute_s: float = Field(default=60.0, gt=0)
    # The window writes_per_hour counts in: GitHub's hour (`make bench-scale` shortens both
    # windows and the spacing by one factor, together with the sandbox's window).
    write_hour_s: float = Field(default=3600.0, gt=0)
    # A job whose next write would wait longer than this for the installation's slot gives
    # its worker back and is queued again at the slot (other PRs' jobs run meanwhile).
    write_defer_after_s: float = Field(default=5.0, ge=0)
    # What one installation's model runs may cost per UTC day and per UTC month, in US dollars
    # (None: no cap). At a cap no new model run starts for the installation's PRs.
    installation_daily_usd: float | None = Field(default=None, ge=0)
    installation_monthly_usd: float | None = Field(default=None, ge=0)

    @field_validator("retention_days")
    @classmethod
    def _long_enough_for_redelivery(cls, days: float) -> float:
        if 0 < days < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be 0 (keep everything) or at least {MIN_RETENTION_DAYS:g} days: GitHub "
                "redelivers deliveries up to 7 days old (GitHub Enterprise Server), and one "
                "whose id the bot forgot would be dispatched again, as a new one"
            )
        return days

    @property
    def installed_agents_dir(self) -> Path:
        """The directory `make agents` installs the presets' CLIs into."""
        return self.agents_dir or self.data_dir / "agents"

    def require_webhook_secret(self) -> str:
        """The webhook secret, or a start-up error that says how to set one."""
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise ConfigError(
                "REVIEW_LOOP_WEBHOOK_SECRET is not set. Set it to the webhook secret of your "
                "GitHub App (Settings -> Developer settings -> GitHub Apps -> your app -> "
                "Webhook secret), in the environment or in .env. The bot refuses to accept "
                "unsigned webhooks."
            )
        return self.webhook_secret.get_secret_value()

    def require_private_key(self) -> str:
        """The App's PEM private key, from `PRIVATE_KEY` or `PRIVATE_KEY_PATH`."""
        if self.private_key is not None and self.private_key.get_secret_value():
            return self.private_key.get_secret_value()
        if self.private_key_path is not None:
            try:
                return self.private_key_path.read_text()
            except OSError as exc:
                raise ConfigError(
                    f"REVIEW_LOOP_PRIVATE_KEY_PATH={self.private_key_path} cannot be read: {exc}"
                ) from exc
        raise ConfigError(
            "No GitHub App private key: set REVIEW_LOOP_PRIVATE_KEY_PATH to the .pem file "
            "GitHub gave you (or REVIEW_LOOP_PRIVATE_KEY to its contents)."
        )

    def require_app_id(self) -> int:
        if self.app_id is None:
            raise ConfigError("REVIEW_LOOP_APP_ID is not set: use your GitHub App's numeric id.")
        return self.app_id


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """One warning for every `REVIEW_LOOP_*` name in `environ` that no setting reads (a
    misspelt setting is otherwise ignored in silence), with the closest setting's name."""
    known = [PREFIX + name.upper() for name in Settings.model_fields]
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known or upper in NOT_SETTINGS:
            continue
        # Compared without the prefix, which every name shares and which would make any
        # two names look alike.
        names = [k.removeprefix(PREFIX) for k in known]
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), names, n=1, cutoff=0.75)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{name} is not a review-loop setting and is ignored{hint}")
    return warnings
