"""Shared by the stage scripts (run as `python -m stages.NAME`): known errors become one clear line."""
import gc
import sys
import time

from mainrun.common import Interrupted, MainrunError
from mainrun.runlog import seconds_since_process_start
from mainrun.stagetimes import record


def run_stage(main):
    """Run main(); a known error prints one line and exits 1, a stop (Ctrl-C, SIGTERM) that the run handled prints
    its own line and exits 130. Either way no traceback: the exception is dropped before exiting, so nothing it holds
    (open DVC/git objects of dvclive) is left to be torn down at interpreter shutdown. A stage that ends records its
    start (the process's, imports included) and end (mainrun.stagetimes)."""
    started = time.time() - (seconds_since_process_start() or 0.0)
    try:
        main()
        record(started)
        return
    except Interrupted as e:
        line, code = str(e), 130
    except MainrunError as e:
        line, code = f"error: {e}", 1
    except KeyboardInterrupt:  # Ctrl-C before a training loop started (or in another stage): nothing saved
        line, code = "interrupted; run dvc repro again", 130
    gc.collect()  # free what the exception held (dvclive's git objects) now, not at interpreter shutdown
    print(line, file=sys.stderr, flush=True)
    sys.exit(code)
