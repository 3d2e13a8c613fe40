"""The bot's briefs and the scripted sandbox agree on the conventions they share."""

from bot.agents.models import prompting
from bot.sandbox.models import prompts


def test_schema_and_section_names_match_the_sandboxs() -> None:
    """The sandbox cannot import the bot, so its copies of the names are checked here."""
    pairs = [
        (prompting.REVIEW_SCHEMA, prompts.REVIEW_SCHEMA),
        (prompting.FIX_SCHEMA, prompts.FIX_SCHEMA),
        (prompting.VERIFY_SCHEMA, prompts.VERIFY_SCHEMA),
        (prompting.CHANGED_CODE, prompts.CHANGED_CODE),
        (prompting.FLAGGED_CODE, prompts.FLAGGED_CODE),
        (prompting.CODE_AFTER_FIX, prompts.CODE_AFTER_FIX),
    ]
    assert all(ours == theirs for ours, theirs in pairs)


def test_untrusted_text_is_fenced_where_the_sandbox_finds_it() -> None:
    """The untrusted section's fence, even with backticks inside, reads back whole."""
    section = "\n".join(prompting.untrusted_section("Context", "see ```code``` here"))
    assert prompts.untrusted_text(section) == "see ```code``` here"
