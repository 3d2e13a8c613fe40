"""review-loop command line: setup | serve | web | worker | migrate | healthcheck | replay |
status | sandbox | model-sandbox | demo."""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Coroutine, Sequence
from pathlib import Path

import httpx
import uvicorn
from dotenv import dotenv_values

from bot import held_secrets, liveness
from bot.config import ConfigError, Settings, unknown_settings
from bot.logs import setup_logging
from bot.web import signing
from bot.webhooks.routing import Router


def _router() -> Router:
    from handlers import enabled_router

    return enabled_router()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the CLI stops web and worker together."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def _serve(settings: Settings, *, web: bool, worker: bool) -> None:
    from bot.runtime import open_runtime
    from bot.web.app import create_app
    from bot.worker import run_worker, wire

    if web:
        settings.require_webhook_secret()
    async with open_runtime(settings) as runtime:
        tasks: list[asyncio.Task[object]] = []
        server: _Server | None = None
        if web:
            config = uvicorn.Config(
                create_app(runtime, _router()),
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level.lower(),
                access_log=False,
                lifespan="off",
            )
            server = _Server(config)
            tasks.append(asyncio.create_task(server.serve(), name="web"))
        if worker:
            fleet = wire(runtime, _router())
            if not web and settings.metrics and settings.worker_metrics_port:
                _serve_worker_metrics(settings)
            tasks.append(
                asyncio.create_task(run_worker(fleet, install_signal_handlers=False), name="worker")
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        where = "embedded database" if runtime.embedded else "database at REVIEW_LOOP_DATABASE_URL"
        roles = " + ".join(t.get_name() for t in tasks)
        print(f"review-loop {roles} running on the {where}", file=sys.stderr)
        if web:
            print(
                f"webhook endpoint: http://{settings.host}:{settings.port}/webhook", file=sys.stderr
            )
        stopper: asyncio.Task[object] = asyncio.create_task(stop.wait())
        waiting: list[asyncio.Task[object]] = [stopper, *tasks]
        async with liveness.heartbeat(
            liveness.heartbeat_path(settings.data_dir), settings.heartbeat_s
        ):
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if server is not None:
            server.should_exit = True
        for t in tasks:
            if t.get_name() == "worker":
                t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        stopper.cancel()
        for t in done:
            error = None if t is stopper or t.cancelled() else t.exception()
            if error is not None:
                raise error


def _serve_worker_metrics(settings: Settings) -> None:
    """A worker alone has no web app: its histograms get their own port (a daemon thread
    that ends with the process)."""
    from prometheus_client import start_http_server

    from bot import meters

    start_http_server(settings.worker_metrics_port, settings.host, registry=meters.REGISTRY)
    print(
        f"worker metrics: http://{settings.host}:{settings.worker_metrics_port}/metrics",
        file=sys.stderr,
    )


def _run_on_uvloop(main: Coroutine[None, None, None]) -> None:
    """Run the web process on uvloop, as `uvicorn.run` does (uvicorn[standard] installs it):
    the default asyncio loop costs the intake more CPU per request (bench/intake.py).
    Processes with a worker stay on the default loop until the fix runner's subprocesses
    (agents, git, repository commands) have been tested on uvloop."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def _migrate(settings: Settings) -> None:
    from bot.engine import database, migrations

    where = database.locate(settings)
    pool = database.open_pool(where.url, max_size=1)
    await pool.open(wait=True, timeout=30)
    try:
        async with pool.connection() as conn:
            applied = await migrations.migrate(conn)
    finally:
        await pool.close()
    if applied:
        for m in applied:
            print(f"applied {m.version}: {m.name}")
    else:
        print(f"database is up to date (migration {migrations.LATEST})")


async def _status(settings: Settings, as_json: bool) -> None:
    from bot.engine import database
    from bot.web.status import collect_status

    where = database.locate(settings)
    pool = database.open_pool(where.url, max_size=1)
    await pool.open(wait=True, timeout=30)
    try:
        report = await collect_status(pool)
    finally:
        await pool.close()
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    print("Recent deliveries:")
    for d in report["deliveries"] or [{"id": "(none)"}]:
        if d["id"] == "(none)":
            print("  (none)")
            continue
        name = f"{d['event']}.{d['action']}" if d["action"] else d["event"]
        print(f"  {d['received_at'][:19]}  {d['id'][:36]:36}  {name:28} {d['status']}")
    jobs = ", ".join(f"{k}={v}" for k, v in sorted(report["jobs"].items())) or "(none)"
    print(f"Jobs: {jobs}")
    print("Leases:")
    for lease in report["leases"] or [None]:
        if lease is None:
            print("  (none)")
        else:
            state = "live" if lease["live"] else "expired"
            print(f"  {lease['key']}  holder={lease['holder']} token={lease['token']} {state}")
    costs = report["costs"]
    print(
        f"Model cost: ${costs['total_usd']:.4f} in all, {costs['tokens_in']} tokens in, "
        f"{costs['tokens_out']} out"
        + (f" ({costs['unpriced_calls']} calls without a price)" if costs["unpriced_calls"] else "")
    )
    for row in costs["by_agent"]:
        print(
            f"  {row['agent']:16} {row['purpose']:8} {row['calls']:6} calls  "
            f"${row['cost_usd']:.4f}  {row['tokens_in']} in / {row['tokens_out']} out"
        )
    for row in costs["installations"]:
        print(
            f"  installation {row['installation_id']}: ${row['today_usd']:.4f} today, "
            f"${row['month_usd']:.4f} this month (UTC)"
        )


def _healthcheck(settings: Settings, max_age_s: float | None) -> int:
    """Exit 0 while the heartbeat of the process on this data dir is fresh (a liveness probe)."""
    max_age = settings.stalled_after_s if max_age_s is None else max_age_s
    path = liveness.heartbeat_path(settings.data_dir)
    reason = liveness.stale_reason(path, max_age, now=time.time())
    if reason is not None:
        print(f"review-loop healthcheck: {reason}", file=sys.stderr)
        return 1
    print("alive")
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    secret = settings.require_webhook_secret()
    body = Path(args.file).read_bytes()
    url = args.url or f"http://{settings.host}:{settings.port}/webhook"
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": args.event,
        "X-GitHub-Delivery": args.delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signing.sign(secret, body),
        "User-Agent": "review-loop-replay",
    }
    try:
        resp = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"could not reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{resp.status_code} {resp.text}")
    return 0 if resp.status_code < 400 else 1


def _setup(args: argparse.Namespace) -> int:
    from bot.setup_flow import SetupError, SetupOptions, run_setup

    options = SetupOptions(
        webhook_url=args.webhook_url,
        org=args.org,
        name=args.name,
        github_web=args.github_web,
        github_api=args.github_api,
        port=args.port,
        env_file=args.env_file,
        key_dir=args.key_dir,
        force=args.force,
        timeout=args.timeout,
        open_browser=not args.no_browser,
    )
    try:
        return run_setup(options)
    except SetupError as error:
        print(f"review-loop setup: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="review-loop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser(
        "setup", help="register the GitHub App (manifest flow) and write its credentials"
    )
    setup.add_argument("--webhook-url", required=True, help="where GitHub sends webhooks")
    setup.add_argument("--org", help="register the App on this organisation (default: you)")
    setup.add_argument("--name", help="the App's name (default: app.yml's)")
    setup.add_argument("--github-web", default="https://github.com")
    setup.add_argument("--github-api", default="https://api.github.com")
    setup.add_argument("--port", type=int, default=0, help="local port (default: any free)")
    setup.add_argument("--env-file", type=Path, default=Path(".env"))
    setup.add_argument("--key-dir", type=Path, help="default: the env file's directory")
    setup.add_argument("--force", action="store_true", help="overwrite the env file and key")
    setup.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (600)")
    setup.add_argument("--no-browser", action="store_true", help="only print the address")
    sub.add_parser("serve", help="web + worker in one process (embedded database by default)")
    sub.add_parser("web", help="only the webhook endpoint")
    sub.add_parser("worker", help="only a job worker (run as many as you like)")
    sub.add_parser("migrate", help="apply pending database migrations")
    replay = sub.add_parser("replay", help="sign a payload file and POST it to a running bot")
    replay.add_argument("file")
    replay.add_argument("--event", required=True, help="X-GitHub-Event, e.g. pull_request")
    replay.add_argument("--url", help="webhook URL (default: this bot's)")
    replay.add_argument("--delivery", help="X-GitHub-Delivery (default: a new uuid)")
    health = sub.add_parser(
        "healthcheck",
        help="exit 0 while the serve/web/worker process on this data dir is alive (a probe)",
    )
    health.add_argument(
        "--max-age",
        type=float,
        help="seconds the heartbeat may be old (default: REVIEW_LOOP_STALLED_AFTER_S)",
    )
    status = sub.add_parser(
        "status", help="recent deliveries, jobs by state, leases, model cost totals"
    )
    status.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="run the whole loop against the local GitHub sandbox")
    demo.add_argument("--json", action="store_true", help="end with one JSON line of results")
    demo.add_argument("--keep", action="store_true", help="keep the demo's working folder")
    demo.add_argument(
        "--scenario",
        choices=["llm", "budget", "ruff", "cli-agents", "sarif"],
        default="llm",
        help="llm (default): ruff's findings and a scripted model reviewer's and fixer's (the "
        "local model sandbox); budget: the same under a per-PR budget that holds the model "
        "fixer (ends needs-human); ruff: the built-in analyzers and fixers only; cli-agents: "
        "the real Claude Code, Codex, aider and Gemini CLI (after `make agents`) as fixers, on "
        "scripted models; sarif: bandit and semgrep as catalog SARIF auditors on a Python and "
        "JavaScript repository, semgrep's fixes applied by sarif-fix",
    )
    sandbox = sub.add_parser("sandbox", help="run the local GitHub sandbox alone")
    sandbox.add_argument("--port", type=int, default=8010)
    sandbox.add_argument(
        "--webhook-url", default=None, help="where to send webhooks (default: this bot's)"
    )
    models = sub.add_parser(
        "model-sandbox", help="run the local scripted model server (OpenAI, Anthropic, Gemini)"
    )
    models.add_argument("--port", type=int, default=8020, help="0: any free port")
    models.add_argument("--scenario", type=Path, help="a JSON scenario: rules and agent turns")
    models.add_argument("--api-key", help="refuse every other key (default: accept any)")
    return parser


def _warn_unknown_settings() -> None:
    """Warn about misspelt `REVIEW_LOOP_*` names, in the environment or in `./.env`."""
    names = dict(os.environ)
    with contextlib.suppress(OSError):
        names.update({k: v or "" for k, v in dotenv_values(".env").items()})
    for warning in unknown_settings(names):
        logging.getLogger("bot.config").warning("%s", warning)


def _settings(*, long_running: bool) -> Settings:
    """The settings. A long-running process (serve, web, worker) first re-execs itself with
    its secrets moved out of the environment (`bot.held_secrets`), then makes itself
    non-dumpable: the programs it runs for repositories cannot read them from /proc."""
    if not long_running:
        return Settings()
    secrets = held_secrets.take_secrets()
    if not secrets:
        held_secrets.reexec_without_secrets(
            held_secrets.secret_names(os.environ, _agent_variables(Settings()))
        )
    held_secrets.make_undumpable()
    return Settings(**held_secrets.settings_overrides(secrets))  # type: ignore[arg-type]


def _agent_variables(settings: Settings) -> list[str]:
    """The variables the agent catalog passes to agents (API keys, allow-listed names): held
    like the bot's own secrets. A catalog that does not load is reported later, at start."""
    from bot.agents.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(settings.agents_file)
    except (CatalogError, OSError):
        return []
    names = [name for spec in catalog.values() for name in spec.env]
    return names + [spec.api_key_env for spec in catalog.values() if spec.api_key_env]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "setup":
        return _setup(args)  # runs before any credentials exist: no Settings
    try:
        settings = _settings(long_running=args.command in ("serve", "web", "worker"))
        level = settings.log_level
        if args.command == "demo" and level.upper() == "INFO":
            level = "WARNING"  # the demo prints its own progress
        setup_logging(level, settings.log_format)
        _warn_unknown_settings()
        if args.command == "serve":
            asyncio.run(_serve(settings, web=True, worker=True))
        elif args.command == "web":
            _run_on_uvloop(_serve(settings, web=True, worker=False))
        elif args.command == "worker":
            asyncio.run(_serve(settings, web=False, worker=True))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "healthcheck":
            return _healthcheck(settings, args.max_age)
        elif args.command == "status":
            asyncio.run(_status(settings, args.json))
        elif args.command == "replay":
            return _replay(settings, args)
        elif args.command == "demo" and args.scenario in ("llm", "budget"):
            from bot.demo.llm import main as llm_demo_main

            return llm_demo_main(as_json=args.json, keep=args.keep, scenario=args.scenario)
        elif args.command == "demo" and args.scenario == "sarif":
            from bot.demo.sarif import main as sarif_demo_main

            return sarif_demo_main(as_json=args.json, keep=args.keep)
        elif args.command == "demo" and args.scenario == "cli-agents":
            from bot.demo.cli_agents import main as cli_demo_main

            return cli_demo_main(
                as_json=args.json,
                keep=args.keep,
                agents_dir=settings.installed_agents_dir.absolute(),
            )
        elif args.command == "demo":
            from bot.demo.run import main as demo_main

            return demo_main(as_json=args.json, keep=args.keep)
        elif args.command == "model-sandbox":
            from bot.sandbox.models.server import run_model_sandbox

            run_model_sandbox(
                host=settings.host,
                port=args.port,
                scenario_file=args.scenario,
                api_key=args.api_key,
            )
        elif args.command == "sandbox":
            from bot.sandbox.server import run_sandbox

            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            run_sandbox(
                host=settings.host,
                port=args.port,
                data_dir=settings.data_dir / "sandbox",
                webhook_url=args.webhook_url or f"http://{settings.host}:{settings.port}/webhook",
                webhook_secret=secret,
            )
    except ConfigError as exc:
        print(f"review-loop: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
