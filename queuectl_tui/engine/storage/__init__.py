"""The storage layer below the engine: where the database is, opening it, its
schema and migrations, the models, and the little SQL that differs between
SQLite and PostgreSQL.

- `location.py`: which database is meant, decided without importing database code
- `opening.py`, `opened.py`: opening a database, and the handle the engine holds
- `sqlite_file.py`: the checks on a SQLite file before anything is written to it
- `databases.py`: the Peewee databases queuectl opens (writer lock, storage errors)
- `driver_errors.py`, `errors.py`: the driver's failures as the engine's errors,
  and the words a person reads for them
- `schema.py`, `migrations/`: the schema version, one module per version's step
- `models.py`, `columns.py`: the tables, and a job's columns named once
- `backends/`: the claim, the indexes and the wake-up, one module per database
- `writer_lock.py`, `wakeup.py`: SQLite writers queueing in the kernel, idle
  workers woken by the WAL
"""
