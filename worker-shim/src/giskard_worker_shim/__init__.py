"""The Giskard worker shim: runs a Python worker for giskard-supervisor.

Standard library only (Python 3.8 to 3.13). See PROTOCOL.md for the wire protocol and README.md
for the `giskard-worker` command.
"""

__version__ = "0.1.0"
