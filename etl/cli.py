"""The ``gridgov`` command line: database, boundaries and lookup.

Each command is a thin shell over ``gis`` (and ``webmap`` for serving): parse options, call one
function, print the result. Errors that come from bad input exit with status 2 and a message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gis.config import SHIPPED_BOUNDARIES, get_settings


def _echo_json(payload) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """gridgov: grid governance for a city district on PostGIS."""


# -- gridgov db ----------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database: the embedded PostGIS, or the one DATABASE_URL names."""


def _embedded_or_exit():
    from gis.embedded import EmbeddedPostgres

    settings = get_settings()
    if not settings.uses_embedded:
        click.echo("DATABASE_URL is set: that database is used and nothing local is managed.")
        return None
    return EmbeddedPostgres(settings)


@db.command("init")
def db_init() -> None:
    """Create the embedded PostGIS cluster under GRIDGOV_HOME (does not start it)."""
    server = _embedded_or_exit()
    if server is None:
        return
    created = server.init()
    click.echo(("initialised " if created else "already initialised ") + str(server.data_dir))


@db.command("start")
def db_start() -> None:
    """Start the embedded PostGIS (initialising it first if needed)."""
    server = _embedded_or_exit()
    if server is None:
        _check_connection()
        return
    started = server.start()
    click.echo(("started: " if started else "already running: ") + server.status().describe())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded PostGIS."""
    server = _embedded_or_exit()
    if server is None:
        return
    click.echo("stopped" if server.stop() else "not running")


@db.command("status")
def db_status() -> None:
    """Say whether the database is reachable, and its schema revision."""
    server = _embedded_or_exit()
    if server is not None:
        click.echo("embedded PostGIS: " + server.status().describe())
        if not server.is_running():
            sys.exit(1)
    _check_connection()


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Bring the schema up to date (Alembic migrations)."""
    from gis.database import current_revision, upgrade

    upgrade(revision=revision)
    click.echo(f"schema at revision {current_revision()}")


@db.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database in use."""
    from gis.database import database_url

    click.echo(database_url())


@db.command("logs")
@click.option("-n", "--lines", default=40, show_default=True)
def db_logs(lines: int) -> None:
    """Print the end of the embedded server's log."""
    server = _embedded_or_exit()
    if server is not None:
        click.echo(server.log_tail(lines))


def _check_connection() -> None:
    from sqlalchemy import text

    from gis.database import current_revision, get_engine

    with get_engine().connect() as conn:
        version = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    revision = current_revision() or "none (run gridgov db upgrade)"
    click.echo(f"connected; PostGIS {version}; schema revision {revision}")


# -- gridgov boundaries --------------------------------------------------------------------------
@main.group()
def boundaries() -> None:
    """Boundary generations: generate, load, import, validate, activate, export."""


@boundaries.command("generate")
@click.option("--seed", default=2018, show_default=True, help="Random seed of the partition.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=SHIPPED_BOUNDARIES, show_default=True, help="GeoPackage to write.")
def boundaries_generate(seed: int, output: Path) -> None:
    """Divide the real Liangxi outline into 16 streets, 156 communities and 2,400 grids."""
    from gis.partition import generate, write_geopackage

    levels = generate(seed)
    write_geopackage(levels, output)
    counts = ", ".join(f"{len(levels[level])} {level}" for level in levels)
    click.echo(f"wrote {output} (seed {seed}): {counts}")


@boundaries.command("load")
@click.option("--path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=SHIPPED_BOUNDARIES, show_default=True)
def boundaries_load(path: Path) -> None:
    """Load the shipped Liangxi grid system as the active generation (idempotent)."""
    from gis.boundaries import load_shipped
    from gis.database import get_engine

    generation_id, changed = load_shipped(get_engine(), path)
    state = "loaded and activated" if changed else "already loaded and active"
    click.echo(f"generation {generation_id}: {state}")
    _print_generation(generation_id)


def _print_generation(generation_id: int) -> None:
    from gis.boundaries import list_generations
    from gis.database import get_engine

    for info in list_generations(get_engine()):
        if info.id == generation_id:
            click.echo("  " + ", ".join(f"{n} {level}" for level, n in info.counts.items()))


@boundaries.command("list")
@click.option("--json", "as_json", is_flag=True)
def boundaries_list(as_json: bool) -> None:
    """List the generations, the active one marked with *."""
    from gis.boundaries import list_generations
    from gis.database import get_engine

    infos = list_generations(get_engine())
    if as_json:
        _echo_json([info.__dict__ for info in infos])
        return
    for info in infos:
        counts = "/".join(str(info.counts.get(level, 0)) for level in
                          ("district", "street", "community", "grid"))
        mark = "*" if info.active else " "
        click.echo(f"{mark} {info.id:>4}  {info.created_at:%Y-%m-%d %H:%M}  {counts:<16} "
                   f"{info.name}")


@boundaries.command("activate")
@click.argument("generation_id", type=int)
def boundaries_activate(generation_id: int) -> None:
    """Make a loaded generation the active one (atomically; the old one is kept)."""
    from gis.boundaries import activate
    from gis.database import get_engine

    try:
        previous = activate(get_engine(), generation_id)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"generation {generation_id} is active (was {previous})")


_LEVEL_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@boundaries.command("import")
@click.option("--gpkg", type=_LEVEL_FILE, help="A GeoPackage with layers named after the levels.")
@click.option("--district", type=_LEVEL_FILE, help="File with the district outline.")
@click.option("--street", type=_LEVEL_FILE, help="File with the streets.")
@click.option("--community", type=_LEVEL_FILE, help="File with the communities.")
@click.option("--grid", type=_LEVEL_FILE, help="File with the grids.")
@click.option("--crs", help="CRS of the coordinates, overriding the file's: wgs84, cgcs2000, "
              "gcj02, bd09 or EPSG:n (GCJ-02/BD-09 files usually claim EPSG:4326).")
@click.option("--code-field", help="Column with the unit code (default: code, adcode, …).")
@click.option("--name-field", help="Column with the unit name (default: name, …).")
@click.option("--parent-field", help="Column with the parent's code (default: parent_code, …; "
              "without one, the parent is found spatially).")
@click.option("--type-field", help="Column with the grid type (comprehensive/dedicated).")
@click.option("--kind-field", help="Column with what a dedicated grid covers.")
@click.option("--name", "generation_name", help="Name of the new generation.")
@click.option("--tolerance", default=1.0, show_default=True,
              help="Gaps, overlaps and spill-over below this many m² are ignored.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--activate", "activate_now", is_flag=True, help="Activate when valid.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the validation report as JSON here.")
def boundaries_import(gpkg, district, street, community, grid, crs, code_field, name_field,
                      parent_field, type_field, kind_field, generation_name, tolerance, dry_run,
                      activate_now, report) -> None:
    """Import boundaries from GeoJSON, Shapefile or GeoPackage as a new generation.

    Levels not given are copied from the active generation, so a new set of grids alone can be
    imported. Everything is validated first (geometry, codes, parents, gaps, overlaps, nesting);
    a file with errors is reported in full and nothing is written.
    """
    from etl.boundaries import BoundaryFileError, FieldMap, read_hierarchy
    from gis.boundaries import activate, create_generation
    from gis.coverage import validate_hierarchy
    from gis.database import get_engine

    sources = {level: path for level, path in
               (("district", district), ("street", street), ("community", community),
                ("grid", grid)) if path is not None}
    fields = FieldMap(code=code_field, name=name_field, parent_code=parent_field,
                      grid_type=type_field, dedicated_kind=kind_field)
    engine = get_engine()
    try:
        levels = read_hierarchy(sources, gpkg=gpkg, crs=crs, fields=fields, engine=engine)
    except BoundaryFileError as exc:
        raise click.ClickException(str(exc)) from exc
    _, result = validate_hierarchy(levels, area_tolerance_m2=tolerance)
    if report:
        report.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    click.echo(result.to_text())
    if not result.ok:
        click.echo("nothing was imported", err=True)
        sys.exit(2)
    if dry_run:
        click.echo("dry run: nothing was written")
        return
    inputs = [str(p) for p in (gpkg, *sources.values()) if p is not None]
    generation_id = create_generation(
        engine, levels,
        name=generation_name or f"import of {', '.join(Path(p).name for p in inputs)}"[:200],
        source="; ".join(inputs), area_tolerance_m2=tolerance,
    )
    click.echo(f"generation {generation_id} created (inactive)")
    if activate_now:
        activate(engine, generation_id)
        click.echo(f"generation {generation_id} is active")


@boundaries.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write: .gpkg (one layer per level), .geojson or .shp.")
@click.option("--generation", "generation_id", type=int, help="Default: the active generation.")
@click.option("--level", type=click.Choice(["district", "street", "community", "grid"]))
def boundaries_export(output: Path, generation_id: int | None, level: str | None) -> None:
    """Write a generation out as GeoPackage, GeoJSON or Shapefile."""
    from etl.boundaries import BoundaryFileError, export_levels
    from gis.boundaries import read_generation
    from gis.database import get_engine

    try:
        levels = read_generation(get_engine(), generation_id)
        written = export_levels(levels, output, level)
    except (LookupError, BoundaryFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")


# -- gridgov lookup ------------------------------------------------------------------------------
@main.command("lookup")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default="cgcs2000", show_default=True,
              help="wgs84, cgcs2000, gcj02, bd09 or EPSG:n.")
@click.option("--generation", "generation_id", type=int, help="Default: the active generation.")
@click.option("--json", "as_json", is_flag=True)
def lookup(lon: float, lat: float, crs: str, generation_id: int | None, as_json: bool) -> None:
    """Print the units covering a point: grid → community → street → district.

    A point on an edge shared by several grids goes to the grid with the smallest code.
    """
    from gis.database import get_engine
    from gis.lookup import lookup_point

    try:
        result = lookup_point(get_engine(), lon, lat, crs, generation_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if as_json:
        _echo_json(result.to_dict())
        return
    if not result.inside:
        click.echo(f"({result.lon:.7f}, {result.lat:.7f}) CGCS2000 is outside the district")
        return
    for unit in result.chain:
        click.echo(f"{unit.level:<10} {unit.code:<16} {unit.name}")


if __name__ == "__main__":  # pragma: no cover
    main()

