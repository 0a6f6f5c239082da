"""`python -m odradek` runs the command line."""

from odradek.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
