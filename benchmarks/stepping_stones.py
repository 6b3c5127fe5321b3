"""Acceptance benchmark of the embedded domain (issue: foundation).

Prints a table and, last, one JSON line with the full summary. Same code path as
``soar-env stones``; run ``python benchmarks/stepping_stones.py --help`` for the budget.
"""

import json
import sys

from soar_env.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:] or []
    main(["stones", *argv])
    summary = json.loads(open(next(
        (argv[i + 1] for i, a in enumerate(argv) if a == "--out"), "runs/stepping_stones"
    ) + "/summary.json").read())
    print(json.dumps(summary))
