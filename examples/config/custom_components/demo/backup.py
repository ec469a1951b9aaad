"""Backup platform of the demo integration: pauses nothing, but shows the hooks."""


async def async_pre_backup(hass):
    """Called before a backup starts."""


async def async_post_backup(hass):
    """Called after a backup finishes."""
