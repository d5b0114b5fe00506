"""The performance suite (SPEC section 11): `python -m bench NAME` or `python -m bench all`.

Each benchmark runs against PostgreSQL and Redis, measures its baseline in the same run on the same
machine, and prints the figure, the baseline and their ratio on its last line."""
