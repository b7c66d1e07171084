"""atpctl: ATP's command-line client. It talks to a server's REST API and needs none of the
server's code."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atp")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
