"""The README's Python API examples run as written (the blocks marked <!-- ci:api -->)."""
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
