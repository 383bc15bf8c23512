"""GeoAlchemy2 models; importing this package registers every table on ``Base.metadata``."""

from gis.models.base import Base
from gis.models.units import DEDICATED_KINDS, GRID_TYPES, LEVELS, Generation, Unit

__all__ = ["DEDICATED_KINDS", "GRID_TYPES", "LEVELS", "Base", "Generation", "Unit"]
