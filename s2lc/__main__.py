"""``python -m s2lc`` runs the command-line interface."""

from s2lc.cli.main import cli

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    cli(prog_name="s2lc")
