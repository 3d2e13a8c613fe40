"""The SARIF parser on published sample logs: GitHub's code-scanning example, the SARIF
tutorials' samples (by the SARIF spec's co-editor) and the SARIF VS Code viewer's sample
(tests/fixtures/sarif/spec/README.md names each file's source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.audit.sarif import read_sarif, validate_sarif

SAMPLES = Path(__file__).parent.parent / "fixtures" / "sarif" / "spec"


def sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return doc


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.sarif")))
def test_every_sample_validates_against_the_vendored_schema(name: str) -> None:
    """The published samples are valid SARIF 2.1.0 by the final OASIS schema."""
    validate_sarif(sample(name), name)


def test_github_example_reads_rule_help_levels_regions_and_partial_fingerprints(
    tmp_path: Path,
) -> None:
    """GitHub's "all supported properties" log: rules by ruleIndex give the help and the
    default level, `%SRCROOT%` (no originalUriBaseIds) is the repository root, a region
    spans endLine, and partialFingerprints become the finding's identity."""
    full = "".join(f"line {n}\n" for n in range(1, 61))
    root = write(
        tmp_path,
        {
            "main.js": "// main\nconst foo = 1;\n",
            "src/promises.js": "// promises\nfunction resolvingPromise() {}\n",
            "full.sarif": full,
        },
    )

    read = read_sarif(sample("github-all-properties.sarif"), "codeql", root)

    assert (read.outside, read.suppressed) == (0, 0)
    got = [(f.rule[:7], f.path, f.start_line, f.end_line, f.level) for f in read.findings]
    assert got == [  # by path and line
        ("R01", "full.sarif", 54, 55, "error"),  # the result's own level
        ("3f29204", "main.js", 2, 2, "note"),  # the rule's defaultConfiguration
        ("d5b664a", "src/promises.js", 2, 2, "warning"),  # no level anywhere: warning
    ]
    r01, unused, new = read.findings
    assert unused.message == "Unused variable foo."
    assert unused.snippet == "const foo = 1;"
    assert unused.explanation == (
        "Unused variables, imports, functions or classes may be a symptom of a bug and "
        "should be examined carefully."
    )
    assert new.explanation is not None and new.explanation.startswith(
        "If a function is intended to be a constructor"
    )
    assert new.snippet == "function resolvingPromise() {}"
    assert r01.explanation is None and r01.snippet == "line 54\nline 55"
    assert unused.partial_fingerprint == json.dumps(
        {
            "primaryLocationLineHash": "39fa2ee980eb94b0:1",
            "primaryLocationStartColumnFingerprint": "4",
        }
    )
    assert r01.partial_fingerprint == json.dumps({"primaryLocationLineHash": "ABC:2"})
    # The analyzer's own identity, combined with the analyzer's name.
    again = read_sarif(sample("github-all-properties.sarif"), "another-tool", root).findings
    assert [f.fingerprint for f in again] != [f.fingerprint for f in read.findings]


def test_original_uri_base_ids_resolve_through_their_chain(tmp_path: Path) -> None:
    """REPOROOT has no URI (the producer leaves it to the consumer): it is the repository;
    SRCROOT is `src/` under it. A result on the directory itself names no file: dropped
    and counted."""
    root = write(tmp_path, {"README.md": "# r\n", "src/io/kb.c": "int kb;\n"})

    read = read_sarif(sample("tutorials-original-uri-base-ids.sarif"), "samples", root)

    assert [(f.rule, f.path, f.start_line, f.snippet) for f in read.findings] == [
        ("TUT1001", "README.md", 1, "# r"),
        ("TUT1002", "src/io/kb.c", 1, "int kb;"),
    ]
    assert (read.outside, read.suppressed) == (1, 0)


def test_rule_metadata_by_rule_index(tmp_path: Path) -> None:
    """The rule's full description is the finding's explanation; the region's line and its
    columns on that line flag one line."""
    root = write(tmp_path, {"test.json": "".join(f'"line{n}": {n},\n' for n in range(1, 21))})

    [finding] = read_sarif(sample("tutorials-rule-metadata.sarif"), "samples", root).findings

    assert (finding.rule, finding.level, finding.path) == ("SMP0001", "error", "test.json")
    assert (finding.start_line, finding.end_line, finding.snippet) == (15, 15, '"line15": 15,')
    assert finding.message == "The URI '://C:/code/dev' is invalid."
    assert finding.explanation == (
        "Every JSON property whose value is defined by the schema to be a URI must contain "
        "a valid URI."
    )


def test_default_rule_configuration_gives_the_level(tmp_path: Path) -> None:
    """As published the results are on `file:///C:/...`, outside the repository: both are
    dropped and counted. With the URIs made relative, each result's level is its rule's
    default, found by ruleIndex (the sample's ruleIds name no rule of the log)."""
    doc = sample("tutorials-default-rule-configuration.sarif")

    as_published = read_sarif(doc, "samples", tmp_path)
    assert (as_published.findings, as_published.outside) == ([], 2)

    for result in doc["runs"][0]["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        location["uri"] = location["uri"].removeprefix("file:///C:/code/myProject/")
    read = read_sarif(doc, "samples", tmp_path)
    assert sorted((f.rule, f.path, f.level) for f in read.findings) == [
        ("TUT1001", "io/kb.c", "error"),
        ("TUT1002", "io/file.c", "warning"),
    ]


def test_suppressions_hide_a_result_only_when_every_one_stands(tmp_path: Path) -> None:
    """A result is suppressed when it has suppressions and none was rejected or is under
    review (the tutorials' "Determining suppression status", the SARIF SDK's IsSuppressed).
    The sample's own messages call the last three results hidden; by that rule they are
    kept, and the bot files them."""
    doc = sample("tutorials-suppressions.sarif")

    as_published = read_sarif(doc, "samples", tmp_path)  # no result has a location
    assert (as_published.suppressed, as_published.outside) == (3, 6)

    (tmp_path / "a.c").write_text("int a;\n")
    where = {"physicalLocation": {"artifactLocation": {"uri": "a.c"}}}
    for result in doc["runs"][0]["results"]:
        result["locations"] = [where]
    read = read_sarif(doc, "samples", tmp_path)
    assert sorted(f.message.split(" because ")[1] for f in read.findings) == [
        "at least one suppression has not yet been rejected (it is still under review).",
        "at least one suppression was accepted.",
        "it has at least one unqualified suppression.",
        "it is not suppressed.",
        "its suppression is still under review.",
        "its suppression was rejected.",
    ]
    assert read.suppressed == 3


def test_rules_of_a_tool_extension_by_index_guid_and_id(tmp_path: Path) -> None:
    """The VS Code viewer's sample: rules live in an extension, named by the result's
    `rule.toolComponent` (by index or guid), found by ruleId, rule guid or index. A ruleId
    that disagrees with the indexed rule gets its own rule's help, so id and help agree."""
    root = write(tmp_path, {"file.js": "".join(f"var v{n};\n" for n in range(1, 6))})

    read = read_sarif(sample("vscode-rules-extensions.sarif"), "codeql", root)

    unused, unnecessary = (
        "js/unused-local-variable-1",
        "com.lgtm/python-queries:py/unnecessary-pass-1",
    )
    got = [(f.start_line, f.rule, f.explanation, f.help_uri) for f in read.findings]
    assert got == [
        (1, unused, "TextHelp", None),  # ruleId, rule.guid, toolComponent.index
        (2, unused, "TextHelp", None),  # ruleIndex into the extension
        (3, unused, "TextHelp", None),  # rule.id, toolComponent.guid
        (4, unused, "TextHelp", None),  # rule.index into the extension named by guid
        (5, unnecessary, "TextHelp", "http://lgtm.com"),  # ruleId wins over rule.index
    ]
    assert {f.level for f in read.findings} == {"warning"}  # defaultConfiguration is {}
