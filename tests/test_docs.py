"""The README and docs/ as a newcomer reads them: every relative link (and its #anchor)
resolves, every `nblib …` command shown in a code block parses with the real command line
(its subcommand and flags exist), every `-p NAME` given to a notebook is one of that
notebook's parameters, and every `make TARGET` is a Makefile target."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from nblib.cli import build_parser
from nblib.paths import find_repo_root
from nblib.run.params import notebook_parameters

ROOT = find_repo_root()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def _links() -> list[tuple[Path, str]]:
    out = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+://|mailto:", target):
                out.append((page, target))
    return out


def _commands() -> list[tuple[Path, list[str]]]:
    """`nblib …` and `make …` lines of the pages' shell code blocks, as argument lists
    (comments, pipes and redirections cut off; `[optional]` brackets dropped)."""
    out = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.splitlines():
                line = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0]
                line = re.split(r"\s[|>]\s?", line, maxsplit=1)[0]
                try:
                    words = shlex.split(line.replace("[", "").replace("]", ""))
                except ValueError:  # not a shell line (a YAML or Python snippet)
                    continue
                if words[:1] == [".venv/bin/nblib"] or words[:1] == ["nblib"]:
                    out.append((page, words[1:]))
                elif words[:3] == ["python", "-m", "nblib"]:
                    out.append((page, words[3:]))
                elif words[:1] == ["make"]:
                    out.append((page, ["make", *words[1:]]))
    return out


def test_pages_exist_and_the_readme_leads():
    assert len(PAGES) > 5
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 350
    heads = [line for line in lines if line.startswith("## ")]
    for wanted in ("Quickstart", "Use it on your data", "Use it on your model", "Compare your LIBERO", "Run many on GPUs", "Tests"):  # fmt: skip
        assert any(wanted in h for h in heads), wanted


@pytest.mark.parametrize("page,target", _links(), ids=lambda x: str(x)[-40:])
def test_relative_link_resolves(page: Path, target: str):
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.relative_to(ROOT)}: link to missing {path}"
    if anchor:
        assert file.suffix == ".md", f"{page.relative_to(ROOT)}: anchor on a non-page {target}"
        assert anchor in _anchors(file), (
            f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or page.name}"
        )


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert sum(words[:1] != ["make"] for _, words in COMMANDS) > 20


@pytest.mark.parametrize(
    "page,words", COMMANDS, ids=lambda x: " ".join(x)[:60] if isinstance(x, list) else x.name
)
def test_command_parses(page: Path, words: list[str]):
    where = f"{page.relative_to(ROOT)}: {' '.join(words)}"
    if words[0] == "make":
        targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
        assert all(t in targets for t in words[1:] if "=" not in t), where
        return
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"{where}: does not parse (exit {exc.code})")
    notebook = ROOT / str(getattr(args, "notebook", "") or "")
    if args.command == "run" and notebook.is_file():
        known = notebook_parameters(notebook)
        for name, _ in args.param or []:
            assert name in known, f"{where}: {notebook.name} has no parameter {name!r}"
