"""The queue engine: data, state changes and config. Imports neither face nor Textual."""
