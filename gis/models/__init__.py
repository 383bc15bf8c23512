"""GeoAlchemy2 models; importing this package registers every table on ``Base.metadata``."""

from gis.models.base import Base
from gis.models.incidents import (
    CLASS_KINDS,
    LOCATION_STATUSES,
    SOURCES,
    ImportBatch,
    Incident,
    IncidentAssignmentHistory,
    IncidentClass,
    IncidentKey,
    IncidentReject,
)
from gis.models.units import DEDICATED_KINDS, GRID_TYPES, LEVELS, Generation, Unit

__all__ = [
    "CLASS_KINDS",
    "DEDICATED_KINDS",
    "GRID_TYPES",
    "LEVELS",
    "LOCATION_STATUSES",
    "SOURCES",
    "Base",
    "Generation",
    "ImportBatch",
    "Incident",
    "IncidentAssignmentHistory",
    "IncidentClass",
    "IncidentKey",
    "IncidentReject",
    "Unit",
]
