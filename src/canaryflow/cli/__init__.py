"""The ``canaryflow`` command line (typer + rich). Each command is a thin shell over a lower layer."""
