"""`python -m queuectl_tui` behaves exactly like the `queuectl` script."""

from queuectl_tui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
