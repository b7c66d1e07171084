"""`python -m atpctl`, the same as the `atpctl` console script."""

from atpctl.main import main

main()
