"""Is the Hugging Face hub reachable? Asked once per process, answered in about a second.

Without it, an uncached hub id on a machine with no network costs 20-30 s of retries inside
``huggingface_hub`` before any error. One bounded probe (DNS and a TCP connect, in a daemon
thread so a hanging resolver cannot block) decides whether to try the network at all.
"""

from __future__ import annotations

import os
import socket
import threading
from functools import cache
from urllib.parse import urlparse

PROBE_SECONDS = 1.5


def offline_flag() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes")
               for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


@cache
def hub_reachable() -> bool:
    """Whether a TCP connection to the hub (``HF_ENDPOINT`` or huggingface.co) opens within
    ``PROBE_SECONDS``. False at once in offline mode."""
    if offline_flag():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_SECONDS):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_SECONDS + 0.5)
    return bool(result and result[0])
