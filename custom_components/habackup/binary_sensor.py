"""The problem sensor of a location: on while it does not answer or a stored backup failed
verification (the repair issues say which and why)."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import HabackupConfigEntry
from .entity import LocationEntity

PARALLEL_UPDATES = 0

PROBLEM = BinarySensorEntityDescription(
    key="problem",
    translation_key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HabackupConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    async_add_entities([ProblemSensor(entry.runtime_data, PROBLEM)])


class ProblemSensor(LocationEntity, BinarySensorEntity):
    @property
    def is_on(self) -> bool:
        return self.coordinator.data.problem
