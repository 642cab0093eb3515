"""Worker processes: the loop that claims and runs jobs (worker.py), the
supervisor that keeps them (supervisor.py), and the pool's background duties,
one module each, in services/."""
