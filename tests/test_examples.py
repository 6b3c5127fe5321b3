"""Each example runs as a user would run it, at a tiny budget."""

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_one_round():
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--rounds", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert sum(line.startswith("round 0 step") for line in lines) == 4
    assert lines[-1].startswith("value per length:")
