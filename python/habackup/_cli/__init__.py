"""The command line's parts, one job per module; ``habackup.cli`` parses and dispatches.

- ``inputs``: passwords, store options and usage errors
- ``progress``: the terminal progress line
- ``output``: human and ``--json`` output
- ``remote``: object stores (upload, download, list) through ``ObjectStoreBackupSyncAgent``
- ``commands``: one handler per subcommand on one backup file or one store
- ``trust``: backups over time: ``verify`` in a folder or store, ``prune``, ``copy``
- ``inside``: ``ls`` and ``diff``, the members of backups
"""
