"""Test instrumentation (tests/test_socket_garbage.py), on PYTHONPATH of a server it starts.

When the file ``$GCPROBE_DIR/start`` appears, the process collects, then keeps every cyclic
garbage object the collector finds (``DEBUG_SAVEALL``) until ``$GCPROBE_DIR/stop`` appears, and
writes the types of what it kept to ``$GCPROBE_DIR/garbage.json``: what only the cyclic collector
would have freed in between.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import threading
import time
from pathlib import Path

DIR = os.environ.get("GCPROBE_DIR")


def _watch(folder: Path) -> None:
    while not (folder / "start").exists():
        time.sleep(0.05)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    (folder / "started").touch()
    while not (folder / "stop").exists():
        time.sleep(0.05)
    gc.collect()
    gc.set_debug(0)
    kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    gc.garbage.clear()
    (folder / "garbage.json").write_text(json.dumps(kinds))


if DIR:
    threading.Thread(target=_watch, args=(Path(DIR),), daemon=True).start()
