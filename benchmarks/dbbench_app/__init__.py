"""The tables of ``benchmarks/database.py``: one primary key scheme each."""
