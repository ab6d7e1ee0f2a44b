"""The fleet command ``tenancy``: provision, migrate, health, move, export, erase and list placements.

``cli.main`` is the entry point (pyproject: ``tenancy = "tenancy.fleet.cli:main"``); ``plan`` is the
pure part (migration files, plans, names, exit codes); ``ops`` talks to the databases.
"""
