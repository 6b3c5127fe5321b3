"""The registered ids: making the default id warns about nothing."""

import subprocess
import sys


def test_the_default_id_is_not_called_out_of_date():
    # gymnasium calls SOAR-Tiny-v1 "out of date" because a v2 is registered; v2 is another
    # domain on trial, not v1's successor, so that warning is silenced (as an error here).
    code = "import gymnasium as gym, soar_env; gym.make(soar_env.DEFAULT_ENV); gym.make('SOAR-Tiny-v0')"
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
