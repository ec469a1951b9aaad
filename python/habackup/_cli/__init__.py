"""The command line's parts, one job per module; ``habackup.cli`` parses and dispatches.

- ``inputs``: passwords, store options and usage errors
- ``progress``: the terminal progress line
- ``output``: human and ``--json`` output
- ``remote``: object stores (upload, download, list) through ``ObjectStoreBackupSyncAgent``
- ``commands``: one handler per subcommand
"""
