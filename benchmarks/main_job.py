"""The main job as a new user meets it: a fresh clone, an empty cache, wall time and peak memory.

Clones this repository's HEAD (committed files only) into a temporary folder, imports it from
there (no install: ``soar_env`` and ``agents`` -> ``soar_agents`` are linked into a path of
their own), points ``SOAR_ENV_CACHE`` at an empty folder and runs ``soar-env train`` with
``--rounds`` on ``--env`` (default: the CLI's default id; its other settings are the CLI's
defaults: the soar teacher, seed 0, 2 lockstep workers, then the evaluation). Every 0.2 s it
reads the resident memory of the main process and of its whole process tree (the workers)
from ``/proc``.

    python benchmarks/main_job.py --rounds 50 --out docs/results/speed/main_job_50_0.6.0_v4.json
    python benchmarks/main_job.py --rounds 50 --env SOAR-Tiny-v1   # the default before 0.6.0

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _tree_rss(pid: int) -> int:
    tree, total, todo = _children(), 0, [pid]
    while todo:
        p = todo.pop()
        total += _rss_bytes(p)
        todo += tree.get(p, [])
    return total


def _cpu() -> str:
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return f"{len(names)} x {names[0]}" if names else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--env", default=None, help="a registered id (default: the CLI's, DEFAULT_ENV)")
    parser.add_argument("--eval-steps", type=int, help="a shorter evaluation (a smoke test only)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        clone, path, cache, run = (Path(tmp) / name for name in ("clone", "path", "cache", "run"))
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        path.mkdir()
        cache.mkdir()
        (path / "soar_env").symlink_to(clone / "soar_env")
        (path / "soar_agents").symlink_to(clone / "agents")
        env = {**os.environ, "PYTHONPATH": str(path), "SOAR_ENV_CACHE": str(cache)}
        command = [sys.executable, "-c", "import sys; from soar_agents.app.cli import main; "
                   "sys.argv[0] = 'soar-env'; main()", "train", "--rounds", str(args.rounds),
                   *(["--env", args.env] if args.env else []),
                   "--out", str(run)] + (["--eval-steps", str(args.eval_steps)] if args.eval_steps else [])
        started = time.perf_counter()
        # Output to a file, not a pipe: an undrained pipe fills (64 kB of progress bars) and
        # blocks the writer, which is how a first version of this script stalled a run.
        errors = open(Path(tmp) / "stderr.txt", "w+")
        process = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=errors,
                                   text=True)
        peak_main = peak_tree = 0
        while process.poll() is None:
            peak_main = max(peak_main, _rss_bytes(process.pid))
            peak_tree = max(peak_tree, _tree_rss(process.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        errors.seek(0)
        if process.returncode:
            raise SystemExit(f"soar-env train failed:\n{errors.read()[-3000:]}")
        errors.close()
        rows = list(csv.DictReader(open(run / "rounds.csv")))
        env_id = json.loads((run / "run.json").read_text())["env"]  # what the clone's CLI ran
        evaluation = json.loads((run / "eval.json").read_text())
    rounds = [float(r["time/round_seconds"]) for r in rows]
    tokens = [int(float(r["env/sampled_tokens"])) for r in rows]  # the run's total so far
    # eval.json keeps each (variant, seed)'s share of its stack's wall time: they sum to the evaluation.
    fresh = sum(s for per_seed in evaluation["seconds"].values() for s in per_seed.values())
    result = {
        "what": f"soar-env train --rounds {args.rounds} ({env_id}, soar teacher, seed 0, the CLI's "
                "default 2 lockstep workers) then its evaluation, from a fresh clone with an empty "
                "SOAR_ENV_CACHE (benchmarks/main_job.py)",
        "env": env_id,
        "version": rows[0].get("run/version"),
        "commit": commit,
        "machine": _cpu(),
        "per_seed": {"0": {
            "seconds_total": round(seconds, 1),
            "seconds_rounds": round(sum(rounds), 1),
            "seconds_outside_rounds": round(seconds - sum(rounds), 1),
            "seconds_evaluation": round(fresh, 1),
            "peak_rss_gb_main_process": round(peak_main / 1e9, 3),
            "peak_rss_gb_process_tree": round(peak_tree / 1e9, 3),
            "round_seconds": [round(s, 2) for s in rounds],
            "promotions": [int(float(r["env/promotions"])) for r in rows],
            "sampled_tokens_per_round": [b - a for a, b in zip([0] + tokens, tokens)],
        }},
    }
    s = result["per_seed"]["0"]
    print(f"{seconds / 60:.1f} min in all: {s['seconds_rounds'] / 60:.1f} min of rounds, "
          f"{fresh / 60:.1f} min of evaluation; peak {s['peak_rss_gb_main_process']:.2f} GB main "
          f"process, {s['peak_rss_gb_process_tree']:.2f} GB tree")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
