"""The README's Python API examples run as written (the blocks marked <!-- ci:api -->), and the
README, CHANGELOG and docs name versions and commands, never a commit or an issue."""
import hashlib
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def api_blocks() -> list[str]:
    text = README.read_text()
    return re.findall(r"<!-- ci:api -->\n```python\n(.*?)```", text, flags=re.S)


def test_the_readme_api_examples_run(tmp_path, monkeypatch, capsys):
    blocks = api_blocks()
    assert blocks, "the README has its API examples"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "PNG (299.9994, 299.9994)" in out and "refused:" in out
    assert "3 0 0\n0 3\nTrue None" in out      # the bulk example: done, then skipped


# A hex word of 7 to 40 digits with both a letter and a digit in it looks like a commit hash.
HASH_LIKE = re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{7,40}\b")
ISSUE_LIKE = re.compile(r"(?<![\w&])#\d+\b|\bissues? \d+\b", re.I)


def user_documents() -> list[Path]:
    root = README.parent
    return [README, root / "CHANGELOG.md", *sorted((root / "docs").glob("*.md"))]


def shipped_model_hashes() -> set[str]:
    """The shipped models' sha256 digests: their prefixes name a model (as `pixzip models` prints
    them), not a commit, and a bench table records them."""
    return {hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (README.parent / "models").glob("*.pxm")}


def names_of_commits_or_issues(text: str, model_hashes: set[str]) -> list[str]:
    found = [m.group() for m in HASH_LIKE.finditer(text)
             if not any(h.startswith(m.group().lower()) for h in model_hashes)]
    return found + [m.group() for m in ISSUE_LIKE.finditer(text)]


def test_the_readme_and_docs_name_no_commit_hash_or_issue_number():
    """A result names the version and the command that made it, never a commit or an issue."""
    model_hashes = shipped_model_hashes()
    found = {str(p.relative_to(README.parent)): names
             for p in user_documents()
             if (names := names_of_commits_or_issues(p.read_text(), model_hashes))}
    assert not found, found


def test_the_hash_and_issue_check_sees_them():
    hashes = {"f845c0928edc825f" + "0" * 48}
    assert names_of_commits_or_issues("measured at a9c8ded, see #42 and issue 7", hashes) == \
        ["a9c8ded", "#42", "issue 7"]
    assert names_of_commits_or_issues("photo-g66x8-v1 (f845c0928edc825f), 2.238 bits, deadbeef, "
                                      "2026, -T#, &#8594;", hashes) == []
