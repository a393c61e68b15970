"""`python -m soma` is the `soma` command."""

from soma.cli.entry import main

main()
