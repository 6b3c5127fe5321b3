"""The README's Python snippets run as written (a new user copies them first)."""

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
SNIPPETS = [textwrap.dedent(block) for block in BLOCKS]  # a block in a list item is indented
OPTIONAL = {"soar_env.integrations.verifiers": "verifiers.v1"}


def test_readme_has_its_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    for extra, module in OPTIONAL.items():  # a snippet for an optional extra needs it installed
        if extra in SNIPPETS[index]:
            pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)  # snippets may write runs/
    exec(compile(SNIPPETS[index], f"README snippet {index}", "exec"), {"__name__": "__readme__"})
