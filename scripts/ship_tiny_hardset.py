"""Rebuild the hard set that ships with a tiny model (soar_env/assets/tiny-chain*/).

    OMP_NUM_THREADS=1 python scripts/ship_tiny_hardset.py                     # SOAR-Tiny-v0
    OMP_NUM_THREADS=1 python scripts/ship_tiny_hardset.py SOAR-Tiny-v1        # its own model
    OMP_NUM_THREADS=1 python scripts/ship_tiny_hardset.py SOAR-Tiny-v2        # its own model
    OMP_NUM_THREADS=1 python scripts/ship_tiny_hardset.py SOAR-Tiny-v3        # v2's model
    OMP_NUM_THREADS=1 python scripts/ship_tiny_hardset.py SOAR-Tiny-v4        # v2's model

Each takes ~95-150 s on one CPU core.

The real build: ``gym.make('SOAR-Tiny-v0').reset(seed=0)`` (256 candidates, fail@128) in an
empty temporary cache with no shipped file, copied as ``hardset-<key>.json``. The file is
found by its cache key (weights hash, student prompts, answers, k, seed, sampling settings),
so after retraining the tiny model or changing its prompts or hard-set defaults the old file
is ignored and every first reset samples again until this script is rerun.
"""

import os
import shutil
import sys
import tempfile

import gymnasium as gym


def main() -> int:
    from soar_env import embedded, hardset

    env_id = sys.argv[1] if len(sys.argv) > 1 else "SOAR-Tiny-v0"
    variant = {"SOAR-Tiny-v1": "v1", "SOAR-Tiny-v2": "v2", "SOAR-Tiny-v3": "v3",
               "SOAR-Tiny-v4": "v4"}.get(env_id, "v0")
    target = embedded.variant_hardset_path(variant)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SOAR_ENV_CACHE"] = cache
        hardset.SHIPPED_DIRS = ()  # build for real, do not read the current shipped file
        import soar_env  # noqa: F401  (registers the ids)

        env = gym.make(env_id, disable_env_checker=True)
        env.reset(seed=0)
        built = env.unwrapped.hard_set
        assert built.source == "built", built.source
        name = f"hardset-{built.meta['key']}.json"
        for old in target.glob("hardset-*.json"):
            old.unlink()  # a stale file is never read (other key); do not ship it
        shutil.copyfile(os.path.join(cache, name), target / name)
    print(f"wrote {target / name}: {built.meta['hard']} of {built.meta['candidates']} candidates "
          f"failed all {built.meta['k']} tries ({len(built.train)} train / {len(built.test)} test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
