"""Docs that are generated from the code must be up to date, and the README's commands true."""
from __future__ import annotations

from pathlib import Path

from dla.config import config_reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_hardware_config_reference_is_current() -> None:
    """docs/hardware-config.md is `python -m dla.config` output; regenerate it when a field changes."""
    assert (ROOT / "docs" / "hardware-config.md").read_text() == config_reference_markdown()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line for line in readme[:12] if line.startswith(("pip ", "python"))]
    assert commands[0].startswith("pip install -e . && dla demo")
    test_cmd = commands[1].split("#")[0].strip()
    assert test_cmd == "pip install -e '.[test]' && python3 -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, ".ci/run must run the README's test command verbatim, on a line of its own"
    # ... in a fresh venv of its own, activated before that line, so an undeclared dependency fails
    # CI as it would fail a new user (never in the machine's own Python).
    venv = next(i for i, line in enumerate(ci) if line.startswith("python3 -m venv "))
    activate = next(i for i, line in enumerate(ci) if line.startswith(". ") and "/bin/activate" in line)
    assert venv < activate < ci.index(test_cmd)
    assert not any("pip install" in line and not line.lstrip().startswith("#") for line in ci[:venv])


def test_every_doc_link_in_readme_exists() -> None:
    text = (ROOT / "README.md").read_text()
    for token in text.split("`"):
        if token.startswith("docs/") and token.endswith(".md"):
            assert (ROOT / token).is_file(), token


def test_debugging_example_runs(tmp_path, monkeypatch) -> None:
    """The runnable example of docs/debugging.md, executed as written."""
    import re

    text = (ROOT / "docs" / "debugging.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace("/tmp/dla-debug", str(tmp_path / "debug")).replace("/tmp/dla-edited.qnet",
                                                                            str(tmp_path / "e.qnet"))
    exec(compile(code, "docs/debugging.md", "exec"), {})
    assert (tmp_path / "debug" / "session.json").is_file() and (tmp_path / "e.qnet" / "model.json").is_file()
