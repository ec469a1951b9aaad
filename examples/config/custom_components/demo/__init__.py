"""A tiny custom integration, so the sample config has custom_components like real ones."""

DOMAIN = "demo_custom"


async def async_setup(hass, config):
    return True
