"""Opened.file_gone: the path still names the SQLite file this process opened."""

from __future__ import annotations

import os

from queuectl_tui.engine.db import open_database


def test_a_file_kept_in_place_is_not_gone(tmp_path):
    opened = open_database(str(tmp_path / "q.db"))
    try:
        assert opened.file_gone() is None
    finally:
        opened.close()


def test_a_deleted_file_is_said_deleted(tmp_path):
    path = tmp_path / "q.db"
    opened = open_database(str(path))
    try:
        os.unlink(path)
        assert "was deleted" in opened.file_gone()
    finally:
        opened.close()


def test_a_file_replaced_by_a_new_database_is_said_replaced(tmp_path):
    path = tmp_path / "q.db"
    opened = open_database(str(path))
    try:
        os.unlink(path)
        other = open_database(str(path))
        other.close()
        assert "replaced" in opened.file_gone()
    finally:
        opened.close()
