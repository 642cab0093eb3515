"""Text from jobs (commands, output, errors) made safe to show to a person.

A job's command or output may hold terminal escape sequences (`\\033]0;…` retitles
the terminal, `\\033[2J` clears it). Every face that prints for people passes such
text through `printable`; JSON output stays exact.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls: what a terminal obeys.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """Text safe to print for people: control characters shown as `\\x1b` and
    the like, so a job's command or output cannot retitle, recolour or clear
    the reader's terminal. JSON output stays exact; only text for people goes
    through here."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if keep_newlines else text.replace("\n", " ")


def overwritten(line: str) -> str:
    """One line as a terminal leaves it after its carriage returns: each part
    after a `\\r` writes over the start of the line, so a progress bar printed
    as `\\r 10%` … `\\r100%` reads as its latest state, not as every step."""
    if "\r" not in line:
        return line
    shown = ""
    for part in line.split("\r"):
        shown = part + shown[len(part):]
    return shown


def output_lines(text: str) -> list[str]:
    """A job's output as lines a person reads: `\\r\\n` ends a line, a bare `\\r`
    rewrites it (`overwritten`), tabs become spaces and every other control
    character is shown by `printable`. For panes that draw lines themselves
    (a tab or an escape sent to the terminal would move its cursor)."""
    return [output_line(line) for line in text.split("\n")]


def output_line(line: str) -> str:
    """One line of output (without its newline) as `output_lines` shows it."""
    return printable(overwritten(line.removesuffix("\r")).expandtabs(8))
