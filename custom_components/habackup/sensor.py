"""Sensors of a location: backups stored, space used, newest backup, last verification."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import HabackupConfigEntry, LocationState
from .entity import LocationEntity

# The coordinator does the I/O: entities only read its state.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class LocationSensorDescription(SensorEntityDescription):
    value: Callable[[LocationState], int | datetime | None]
    # False: unavailable while the location does not answer (its listing is unknown).
    needs_listing: bool = True


SENSORS = (
    LocationSensorDescription(
        key="backups",
        translation_key="backups",
        state_class=SensorStateClass.MEASUREMENT,
        value=lambda state: state.count,
    ),
    LocationSensorDescription(
        key="size",
        translation_key="size",
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=0,
        value=lambda state: state.size,
    ),
    LocationSensorDescription(
        key="newest_backup",
        translation_key="newest_backup",
        device_class=SensorDeviceClass.TIMESTAMP,
        value=lambda state: state.newest,
    ),
    LocationSensorDescription(
        key="last_verified",
        translation_key="last_verified",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda state: state.last_verified,
        needs_listing=False,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HabackupConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    async_add_entities(LocationSensor(entry.runtime_data, description) for description in SENSORS)


class LocationSensor(LocationEntity, SensorEntity):
    entity_description: LocationSensorDescription

    @property
    def available(self) -> bool:
        state = self.coordinator.data
        return super().available and (state.reachable or not self.entity_description.needs_listing)

    @property
    def native_value(self) -> int | datetime | None:
        return self.entity_description.value(self.coordinator.data)
