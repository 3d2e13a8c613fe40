"""The aider and Gemini CLI presets: the invocation they build, and their verdicts on what
the real CLIs (aider 0.86.2, Gemini CLI 0.61.0) printed when run by these presets against the
model sandbox (tests/fixtures/cli/<preset>/, recorded by record_aider_gemini.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.agents.cli import aider, gemini_cli
from bot.agents.cli.base import Preset, RunSettings, Verdict

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "cli"
KEY = "sk-test-0123456789abcdefghij"


def settings(**overrides: object) -> RunSettings:
    values: dict[str, object] = {
        "model": "m1",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": KEY,
        "max_turns": 7,
        "max_budget_usd": None,
        "timeout_s": 90.0,
        "extra_args": ("--extra",),
    }
    return RunSettings(**(values | overrides))  # type: ignore[arg-type]


def fixture(preset: Preset, case: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / preset.name / f"{case}.json").read_text())
    return data


def recorded(preset: Preset, case: str, tmp_path: Path) -> Verdict:
    data = fixture(preset, case)
    stdout, stderr = str(data["stdout"]).encode(), str(data["stderr"]).encode()
    return preset.judge(int(str(data["exit_code"])), stdout, stderr, tmp_path)


# -- aider ------------------------------------------------------------------------------------


def test_aider_invocation_keeps_the_key_out_of_argv_and_its_files_out_of_the_repo(
    tmp_path: Path,
) -> None:
    home, scratch, worktree = tmp_path / "home", tmp_path / "scratch", tmp_path / "wt"
    run = aider.PRESET.prepare(
        "/x/aider", settings(), worktree=worktree, home=home, scratch=scratch,
        brief="Fix 1 finding in the repository", files=["shop/cart.py", "-odd.py"],
    )  # fmt: skip
    argv = run.argv
    assert argv[:3] == ["/x/aider", "--model", "openai/m1"]
    assert argv[argv.index("--openai-api-base") + 1] == "http://127.0.0.1:9/v1"
    assert KEY not in " ".join(argv) and run.env["OPENAI_API_KEY"] == KEY
    assert run.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    flags = ["--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--no-auto-lint",
             "--no-check-update", "--analytics-disable", "--yes-always", "--no-stream"]  # fmt: skip
    assert set(flags) <= set(argv)
    assert argv[argv.index("--message-file") + 1] == "/dev/stdin"
    assert run.stdin == b"Fix 1 finding in the repository"
    for history in ("--chat-history-file", "--input-history-file", "--llm-history-file"):
        assert Path(argv[argv.index(history) + 1]).parent == scratch
    # the operator's extra args come before the files, which follow `--`
    assert argv[-4:] == ["--extra", "--", "shop/cart.py", "-odd.py"]
    assert list(run.files) == [home / ".gitconfig"]  # else aider sets one in .git/config


def test_aider_model_with_a_provider_is_passed_as_is(tmp_path: Path) -> None:
    run = aider.PRESET.prepare(
        "aider", settings(model="anthropic/claude-x", base_url=None, api_key=None),
        worktree=tmp_path, home=tmp_path, scratch=tmp_path, brief="b", files=[],
    )  # fmt: skip
    assert run.argv[1:3] == ["--model", "anthropic/claude-x"]
    assert "--openai-api-base" not in run.argv and "OPENAI_API_KEY" not in run.env


def test_aider_applied_edit_is_success_with_its_tokens(tmp_path: Path) -> None:
    verdict = recorded(aider.PRESET, "success", tmp_path)
    assert verdict.ok, verdict.error
    assert (verdict.input_tokens, verdict.output_tokens, verdict.turns) == (2100, 71, 1)
    assert verdict.cost_usd is None  # the sandbox's model has no price
    assert verdict.final_message.startswith("Add the check.")
    assert verdict.final_message.endswith("Applied edit to cart.py")
    assert "Tokens:" not in verdict.final_message


def test_aider_refused_key_is_a_failure_although_it_exits_0(tmp_path: Path) -> None:
    assert fixture(aider.PRESET, "unauthorized")["exit_code"] == 0
    verdict = recorded(aider.PRESET, "unauthorized", tmp_path)
    assert not verdict.ok
    assert verdict.error is not None and verdict.error.startswith("401 from the model service")
    assert "not the API key" in verdict.error


def test_aider_reply_that_matches_nothing_is_a_failure(tmp_path: Path) -> None:
    verdict = recorded(aider.PRESET, "no_match", tmp_path)
    assert not verdict.ok
    assert verdict.error == "aider applied no edit: The LLM did not conform to the edit format."
    assert verdict.turns == 2  # the reply, and the reflection aider sent after it
    assert verdict.input_tokens == 4300


@pytest.mark.parametrize(
    ("stdout", "error"),
    [
        pytest.param(
            "Added a.py to the chat.\n\nlitellm.AuthenticationError: AuthenticationError: "
            "OpenAIException - Incorrect API key provided: sk-...\n",
            "401 from the model service",
            id="authentication-error",
        ),
        pytest.param(
            "litellm.InternalServerError: InternalServerError: OpenAIException - boom\nThe API "
            "provider's servers are down or overloaded.\nRetrying in 0.2 seconds...\n",
            "model service error (InternalServerError): InternalServerError: OpenAIException",
            id="server-error",
        ),
        pytest.param(
            "Added a.py to the chat.\n\nNothing to change.\n\nTokens: 12k sent, 1.5k received.\n",
            "aider applied no edit (its reply had no SEARCH/REPLACE block)",
            id="no-edit",
        ),
    ],
)
def test_aider_failures_in_its_text(stdout: str, error: str, tmp_path: Path) -> None:
    verdict = aider.PRESET.judge(0, stdout.encode(), b"", tmp_path)
    assert not verdict.ok
    assert verdict.error is not None and verdict.error.startswith(error)


def test_aider_tokens_and_cost_add_up_over_its_replies(tmp_path: Path) -> None:
    stdout = (
        "Added a.py to the chat.\n\nreply one\n\n"
        "Tokens: 12k sent, 1.5k received. Cost: $0.03 message, $0.03 session.\n"
        "reply two\n\nTokens: 950 sent, 20 received. Cost: $0.0012 message, $0.03 session.\n"
        "Applied edit to a.py\n"
    )
    verdict = aider.PRESET.judge(0, stdout.encode(), b"", tmp_path)
    assert verdict.ok
    assert (verdict.input_tokens, verdict.output_tokens, verdict.turns) == (12_950, 1_520, 2)
    assert verdict.cost_usd == pytest.approx(0.03)


def test_aider_nonzero_exit_fails_even_with_an_edit(tmp_path: Path) -> None:
    verdict = aider.PRESET.judge(
        1, b"Applied edit to a.py\n", b"Traceback...\nKeyError: x\n", tmp_path
    )
    assert not verdict.ok and verdict.error == "exit code 1: KeyError: x"


# -- Gemini CLI -------------------------------------------------------------------------------


def test_gemini_invocation_writes_its_settings_into_the_fresh_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = gemini_cli.PRESET.prepare(
        "/x/gemini", settings(base_url="http://127.0.0.1:9/"), worktree=tmp_path / "wt",
        home=home, scratch=tmp_path / "s", brief="the brief", files=["a.py"],
    )  # fmt: skip
    assert run.argv == [
        "/x/gemini", "-p", "Follow the instructions on stdin.", "--skip-trust",
        "--output-format", "json", "--approval-mode", "auto_edit", "-m", "m1", "--extra",
    ]  # fmt: skip
    assert run.stdin == b"the brief"
    assert run.env["GEMINI_API_KEY"] == KEY and KEY not in " ".join(run.argv)
    assert run.env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9"
    (path,) = run.files
    assert path == home / ".gemini" / "settings.json"
    config = json.loads(run.files[path])
    assert config["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert config["security"]["folderTrust"]["enabled"] is False
    assert config["telemetry"]["enabled"] is False
    assert config["privacy"]["usageStatisticsEnabled"] is False
    assert config["general"]["maxAttempts"] == 1
    assert config["model"]["maxSessionTurns"] == 7


def test_gemini_approval_mode_from_extra_args_replaces_the_presets(tmp_path: Path) -> None:
    """The CLI refuses --approval-mode given twice ("auto_edit,yolo")."""
    run = gemini_cli.PRESET.prepare(
        "gemini", settings(extra_args=("--approval-mode", "yolo")), worktree=tmp_path,
        home=tmp_path, scratch=tmp_path, brief="b", files=[],
    )  # fmt: skip
    assert run.argv.count("--approval-mode") == 1 and run.argv[-2:] == ["--approval-mode", "yolo"]


def test_gemini_without_a_base_url_uses_the_real_service(tmp_path: Path) -> None:
    run = gemini_cli.PRESET.prepare(
        "gemini", settings(base_url=None, model=None, max_turns=None), worktree=tmp_path,
        home=tmp_path, scratch=tmp_path, brief="b", files=[],
    )  # fmt: skip
    assert "GOOGLE_GEMINI_BASE_URL" not in run.env and "-m" not in run.argv
    assert json.loads(next(iter(run.files.values())))["model"] == {}


def test_gemini_success_reads_its_stats(tmp_path: Path) -> None:
    verdict = recorded(gemini_cli.PRESET, "success", tmp_path)
    assert verdict.ok, verdict.error
    assert verdict.final_message == "Fixed cart.py: a negative count now raises ValueError."
    assert (verdict.input_tokens, verdict.output_tokens, verdict.turns) == (11422, 105, 2)
    assert verdict.cost_usd is None


@pytest.mark.parametrize(
    ("case", "exit_code", "error"),
    [
        pytest.param(
            "unauthorized",
            145,
            "401 from the model service: the API key was refused (scripted model sandbox: this "
            "is not the API key the sandbox was started with)",
            id="401",
        ),
        pytest.param(
            "max_turns",
            53,
            "turn limit reached (model.maxSessionTurns): Reached max session turns",
            id="turn-limit",
        ),
        pytest.param(
            "server_error",
            244,
            "500 from the model service: scripted model sandbox: injected fault server_error",
            id="500-not-retried",
        ),
    ],
)
def test_gemini_failures_from_the_json_on_stderr(
    case: str, exit_code: int, error: str, tmp_path: Path
) -> None:
    data = fixture(gemini_cli.PRESET, case)
    assert (data["exit_code"], data["stdout"]) == (exit_code, "")
    verdict = recorded(gemini_cli.PRESET, case, tmp_path)
    assert not verdict.ok
    assert verdict.error is not None and verdict.error.startswith(error)


@pytest.mark.parametrize(
    ("exit_code", "stdout", "error"),
    [
        pytest.param(145, b"", "401 from the model service", id="401-without-json"),
        pytest.param(41, b"", "authentication is not set up (exit 41)", id="auth-setup"),
        pytest.param(1, b"", "exit code 1 without a JSON report", id="crash"),
        pytest.param(0, b"not json", "printed no JSON result", id="no-json"),
        pytest.param(
            0, b'{"session_id": "x"}', "the JSON result has no response", id="no-response"
        ),
        pytest.param(None, b"", "the CLI did not exit", id="killed"),
    ],
)
def test_gemini_failures_without_a_report(
    exit_code: int | None, stdout: bytes, error: str, tmp_path: Path
) -> None:
    verdict = gemini_cli.PRESET.judge(exit_code, stdout, b"Warning: no colour\n", tmp_path)
    assert not verdict.ok
    assert verdict.error is not None and verdict.error.startswith(error)
