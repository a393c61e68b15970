"""`python -m soma` is the `soma` command."""

from soma.cli.main import app

app()
