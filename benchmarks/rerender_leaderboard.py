"""Re-render a committed bench leaderboard from its leaderboard.json, best pass@1 first.

``soar-env bench`` now orders its rows by pass@1 (docs/evaluation.md); leaderboards written
before 0.4 were ordered by pass@32. This sorts the rows of each folder's leaderboard.json
by mean pass@1 (values unchanged) and rewrites leaderboard.md with the bench's own renderer
(``soar_agents.app.bench.markdown``). A top-level ``note`` in the JSON (what the file does
not hold, e.g. per-seed values that were never recorded) is appended to the markdown.
Compute rows without a recorded bank size show "not recorded" rather than 0.

    python benchmarks/rerender_leaderboard.py docs/results/tiny-v0 docs/results/tiny-v1
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from soar_agents.app.bench import markdown


def rerender(folder: Path) -> None:
    path = folder / "leaderboard.json"
    summary = json.loads(path.read_text())
    # The same order as soar_agents.app.runs.leaderboard: best mean pass@1 first.
    summary["leaderboard"].sort(key=lambda r: -r["pass@1"]["mean"] if "pass@1" in r else 0.0)
    path.write_text(json.dumps(summary, indent=1))
    shown = copy.deepcopy(summary)
    for c in (shown.get("compute") or {}).values():
        c.setdefault("bank_size", float("nan"))  # rendered "nan", replaced below
    text = markdown(shown).replace(" | nan |\n", " | not recorded |\n")
    if summary.get("note"):
        text += "\nNote: " + summary["note"] + "\n"
    (folder / "leaderboard.md").write_text(text)
    print(f"wrote {folder / 'leaderboard.md'} ({', '.join(r['variant'] for r in summary['leaderboard'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        rerender(folder)


if __name__ == "__main__":
    main()
