"""GeoAlchemy2 models; importing this package registers every table on ``Base.metadata``."""

from gis.models.accounts import USER_ROLES, ApiToken, AuditLog, Photo, UserAccount
from gis.models.base import Base
from gis.models.cases import Case, CaseCopy, CaseEvent
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
from gis.models.organisation import (
    DEPARTMENT_KINDS,
    GRID_ROLES,
    POSTS,
    Department,
    GridAreaClass,
    Staff,
    StaffGrid,
)
from gis.models.powers import POWER_KINDS, ClassPower, ClassRoute, DeadlineRule, PowerItem
from gis.models.units import DEDICATED_KINDS, GRID_TYPES, LEVELS, Generation, Unit

__all__ = [
    "CLASS_KINDS",
    "DEDICATED_KINDS",
    "DEPARTMENT_KINDS",
    "GRID_ROLES",
    "GRID_TYPES",
    "LEVELS",
    "LOCATION_STATUSES",
    "POSTS",
    "POWER_KINDS",
    "SOURCES",
    "USER_ROLES",
    "ApiToken",
    "AuditLog",
    "Base",
    "Case",
    "CaseCopy",
    "CaseEvent",
    "ClassPower",
    "ClassRoute",
    "DeadlineRule",
    "Department",
    "Generation",
    "GridAreaClass",
    "ImportBatch",
    "Incident",
    "IncidentAssignmentHistory",
    "IncidentClass",
    "IncidentKey",
    "IncidentReject",
    "Photo",
    "PowerItem",
    "Staff",
    "StaffGrid",
    "Unit",
    "UserAccount",
]
