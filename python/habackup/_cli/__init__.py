"""The command line's parts, one job per module; ``habackup.cli`` parses and dispatches.

- ``inputs``: passwords, store options and usage errors
- ``progress``: the terminal progress line
- ``output``: human and ``--json`` output
- ``remote``: object stores (upload, download, list) through ``ObjectStoreBackupSyncAgent``
- ``restore``: replacing a config dir's contents with a backup's, all or nothing
- ``commands``: one handler per subcommand
"""
