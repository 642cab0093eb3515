"""The full-screen console: a Textual face over the same engine the CLI uses."""
