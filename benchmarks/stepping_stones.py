"""Acceptance benchmark of the embedded domain: does it show SOAR's phenomenon?

Same code path as ``soar-env stones`` (see ``soar_env/experiments/stepping_stones.py``): builds a
fail@128 hard set, runs long RL on hard / good stepping-stone / narrow sets and the SOAR
inner-loop regime over 3 seeds, prints a table and, last, one JSON line with everything.

    python benchmarks/stepping_stones.py [--seeds 3] [--long-steps 120] [--out DIR]
"""

import sys

from soar_env.cli import main

if __name__ == "__main__":
    sys.exit(main(["stones", *sys.argv[1:]]))
