"""A pool's background duties, one module each, all of one shape (base.Service).

rescue (dead workers' jobs), checkpoint (SQLite's WAL), counts (the stored
count of jobs per state), hooks (finish hooks, on their own threads),
scheduler (due cron ticks), pruner (retention) and unblocker (blocked jobs
nothing will release). The supervisor builds them and turns each on every
pass of its loop.
"""
