"""``python -m soar_agents``: the ``soar-env`` command (``soar_agents.app.cli``)."""

import sys

from .app.cli import main

sys.exit(main())
