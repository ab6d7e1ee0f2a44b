"""The fleet command ``tenancy``: provision, migrate, health, move, export, erase and list placements.

One module per command (``provision``, ``migrate``, ``health``, ``move``, ``export``, ``erase``,
``listing``), as alembic's ``command`` module and django-tenants' management commands are laid out;
``cli`` parses the command line (pyproject: ``tenancy = "tenancy.fleet.cli:main"``); ``core`` holds
the connections (psycopg_pool for the control database) and the registry reads every command uses;
``build`` makes a placement, ``data`` copies and checks rows, ``privileges`` copies and compares
grants; ``plan`` is the pure part (migration files, plans, names, privilege differences, exit codes).
"""
