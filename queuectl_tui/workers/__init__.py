"""Worker processes: the loop that claims and runs jobs, and the supervisor that keeps them."""
