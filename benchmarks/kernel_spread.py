"""How much the recorded rewards move when the CPU picks other kernels (a stand-in for
another machine): the figures behind ``REL_TOL`` in ``tests/test_recorded_rewards.py``.

Each setting runs the recorded-rewards episodes in a fresh process with environment
variables that make torch and MKL use the kernels of an older or different CPU. The JSON
keeps every setting's values and the widest relative spread of each reward.

    python benchmarks/kernel_spread.py --out docs/results/kernel_spread.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "default": {},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "mkl-avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "aten-avx2+mkl-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "1-thread": {"SOAR_ENV_THREADS": "1"},
}
CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from test_recorded_rewards import promotion_run, two_steps
run = promotion_run()
print(json.dumps({{"v0": two_steps("SOAR-Tiny-v0", "grounded"), "v1": two_steps("SOAR-Tiny-v1", "grounded"),
                  "promotion_run": run["rewards"], "discrete": [run["promotions"], run["compute"]]}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    code = CHILD.format(tests=str(HERE.parent / "tests"))
    values = {}
    for name, extra in SETTINGS.items():
        env = {**os.environ, "SOAR_ENV_THREADS": "2", **extra}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
        values[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, values[name], flush=True)
    spread = {}
    for key in ("v0", "v1", "promotion_run"):
        for i in range(len(values["default"][key])):
            seen = [v[key][i] for v in values.values()]
            spread[f"{key}[{i}]"] = (max(seen) - min(seen)) / abs(values["default"][key][i])
    discrete_equal = len({json.dumps(v["discrete"]) for v in values.values()}) == 1
    import torch

    result = {"machine": {"cpu": platform.processor() or platform.machine(),
                          "capability": torch.backends.cpu.get_cpu_capability(),
                          "torch": torch.__version__},
              "settings": SETTINGS, "per_setting": values, "relative_spread": spread,
              "widest_relative_spread": max(spread.values()), "discrete_equal": discrete_equal}
    print(json.dumps({k: result[k] for k in ("relative_spread", "widest_relative_spread", "discrete_equal")},
                     indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
