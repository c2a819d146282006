"""`python -m giskard_worker_shim ...`: the same as the `giskard` and `giskard-worker` console
scripts."""

import sys

from giskard_worker_shim.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m giskard_worker_shim"))
