"""`python -m giskard_worker_shim ...`: same as the `giskard-worker` console script."""

import sys

from giskard_worker_shim.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m giskard_worker_shim"))
