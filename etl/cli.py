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


# -- gridgov serve -------------------------------------------------------------------------------
@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug", is_flag=True, help="Flask's reloading debug server instead of waitress.")
def serve(host: str, port: int, debug: bool) -> None:
    """Serve the web map and the JSON API (all assets local: works without internet)."""
    import os

    from webmap import create_app

    config = {}
    if host in ("127.0.0.1", "localhost", "::1") and "GRIDGOV_SECURE_COOKIES" not in os.environ:
        # plain HTTP on this machine only: a Secure cookie would never come back
        config["SECURE_COOKIES"] = False
    app = create_app(config)
    click.echo(f"gridgov: serving on http://{host}:{port}/ (API under /api); Ctrl-C stops")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    try:
        waitress_serve(app, host=host, port=port, threads=8)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


# -- gridgov catalogues --------------------------------------------------------------------------
@main.group()
def catalogues() -> None:
    """Reference catalogues: classes, deadlines, organisation, power list, staff, area classes."""


@catalogues.command("load")
@click.option("--path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Class catalogue CSV (default: classes.csv in --dir).")
@click.option("--dir", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding the catalogue files (default: data/catalogues).")
def catalogues_load(path: Path | None, folder: Path | None) -> None:
    """Load every catalogue under data/catalogues (or --dir) in dependency order (idempotent).

    Classes, deadline rules, departments, power items, class routes and powers, staff, grid
    staff and grid area classes. Every file is checked first and all are written in one
    transaction: on any error (named by file, line and field) nothing is written.
    """
    from gis.catalogues import CATALOGUE_DIR, catalogue_files, load_catalogues
    from gis.database import get_engine

    files = catalogue_files(folder or CATALOGUE_DIR, path)
    try:
        counts = load_catalogues(get_engine(), files)
    except (ValueError, LookupError) as exc:
        raise click.ClickException(f"{exc}; nothing was loaded") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {exc.filename}: {exc.strerror}; "
                                   "nothing was loaded") from exc
    for what, count in counts:
        click.echo(f"{count:,} {what} loaded")


# -- gridgov powers ------------------------------------------------------------------------------
@main.group("powers")
def powers_group() -> None:
    """The power list (权力清单)."""


@powers_group.command("summary")
@click.option("--on", type=click.DateTime(["%Y-%m-%d"]),
              help="Day at which validity is evaluated (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def powers_summary(on, as_json: bool) -> None:
    """Items in force per original → executing department and kind, with totals."""
    from datetime import date

    from gis.database import get_engine
    from gis.powers import power_summary, summary_text

    day = on.date() if on else date.today()
    with get_engine().connect() as conn:
        rows = power_summary(conn, day)
    if as_json:
        _echo_json([row.to_dict() for row in rows])
        return
    click.echo(summary_text(rows, day))


# -- gridgov incidents ---------------------------------------------------------------------------
@main.group()
def incidents() -> None:
    """Incidents: bulk import from files."""


@incidents.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "mappings", multiple=True, metavar="STANDARD=COLUMN",
              help="Source column of a standard one (source_key, class_code, description, "
              "reported_at, x, y, source, crs); repeatable. Default: usual names.")
@click.option("--source", default="bulk_import", show_default=True,
              help="Source of rows without a source column.")
@click.option("--crs", help="wgs84, cgcs2000, gcj02, bd09 or EPSG:n (default: the file's own, "
              "else wgs84).")
@click.option("--timezone", default="Asia/Shanghai", show_default=True,
              help="Time zone of times written without one.")
@click.option("--encoding", help="CSV encoding (default: UTF-8 if it decodes, else GB18030).")
@click.option("--delimiter", help="CSV delimiter (default: guessed from the header).")
@click.option("--layer", help="Layer of a GeoPackage with several.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Rejects CSV (default: FILE.rejects.csv).")
@click.option("--no-dedupe", is_flag=True, help="No derived keys for rows without a source key.")
@click.option("--keep-invalid", is_flag=True,
              help="Load rows with bad coordinates as location 'invalid' instead of rejecting.")
@click.option("--dry-run", is_flag=True, help="Do everything, then roll back.")
@click.option("--chunk-size", default=100_000, show_default=True, type=click.IntRange(min=1))
@click.option("--engine", "assign_engine", type=click.Choice(["memory", "dask"]),
              default="memory", show_default=True,
              help="Where points are assigned to grids: in this process, or on Dask.")
@click.option("--scheduler", help="With --engine dask: the scheduler's address (default: a "
              "local cluster of two workers). See docs/DASK.md.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def incidents_import(file: Path, mappings, source, crs, timezone, encoding, delimiter, layer,
                     rejects, no_dedupe, keep_invalid, dry_run, chunk_size, assign_engine,
                     scheduler, quiet, as_json) -> None:
    """Import incidents from CSV, GeoJSON, GeoPackage or (Geo)Parquet in one transaction.

    Rows are validated, converted to CGCS2000 and assigned to the active generation's grids.
    Times without a zone are --timezone (default Asia/Shanghai, +08:00). Rows that cannot be
    loaded, and duplicates of stored (source, source_key), are kept in incident_reject and the
    rejects file, numbered from 1 for the first data row (a CSV header does not count). Rows
    without a source key get one from their content, so a re-run loads nothing twice.
    A year whose partition is empty (history, a new year) and receives at least 50,000 rows
    is built aside and swapped in at the end, holding the incident table for a moment.
    Exit status: 0 (even with rejected rows), 2 if the file cannot be read, 1 on errors.
    """
    from etl.incidents import ImportOptions, parse_mapping

    try:
        options = ImportOptions(
            mapping=parse_mapping(mappings), source=source, crs=crs, timezone=timezone,
            encoding=encoding, layer=layer, delimiter=delimiter, dedupe=not no_dedupe,
            keep_invalid=keep_invalid, dry_run=dry_run, chunk_size=chunk_size, rejects=rejects,
            engine=assign_engine, scheduler=scheduler)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    _run_import(lambda engine, progress: _import_file(engine, file, options, progress),
                quiet, as_json)


def _import_file(engine, file, options, progress):
    from etl.incidents import import_file

    return import_file(engine, file, options, progress=progress)


def _run_import(run, quiet: bool, as_json: bool) -> None:
    """Run an import; print its summary; exit 2 for unreadable files, 1 for other failures."""
    from etl.incidents import ImportFileError, ImportSetupError, summary_json
    from gis.database import get_engine

    try:
        summary = run(get_engine(), not quiet and sys.stderr.isatty())
    except ImportFileError as exc:
        click.echo(f"gridgov: cannot import {exc}", err=True)
        sys.exit(2)
    except ImportSetupError as exc:
        click.echo(f"gridgov: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # reported in one line; the transaction was rolled back
        click.echo(f"gridgov: import failed, nothing was stored: {type(exc).__name__}: {exc}",
                   err=True)
        sys.exit(1)
    click.echo(summary_json(summary) if as_json else summary.to_text())


# -- gridgov simulate ----------------------------------------------------------------------------
@main.command("simulate")
@click.option("--seed", default=2018, show_default=True, type=int)
@click.option("--start", default="2018-01-01", show_default=True,
              type=click.DateTime(["%Y-%m-%d"]))
@click.option("--end", default="2019-12-31", show_default=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--count", default=40_000, show_default=True, type=click.IntRange(min=1))
@click.option("--dirty", type=click.FloatRange(0, 1), is_flag=False, flag_value=0.02,
              default=0.0, help="Share of spoilt rows (bare --dirty: 0.02).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the rows to this .csv, .parquet or .geojson.")
@click.option("--load/--no-load", default=True, show_default=True,
              help="Load into the database through the import path.")
@click.option("--outline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --no-load: area to fill, a GeoPackage with a grid layer or an "
              "outline (default: the shipped grids, else the district outline).")
@click.option("--cases/--no-cases", default=True, show_default=True,
              help="With --load: walk every loaded incident that has no case yet through the "
              "case workflow (docs/SIMULATION.md).")
@click.option("--knobs", type=click.Path(dir_okay=False, path_type=Path),
              help="Knobs of the simulation (default: data/catalogues/simulation.toml).")
@click.option("--calibrate", is_flag=True, help="Search the knobs in a scratch database until "
              "the indicators of the simulated years match the district figures, write them "
              "to --knobs, and stop (the database in use is not touched).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the import summary as JSON.")
def simulate_command(seed, start, end, count, dirty, output, load, outline, cases, knobs,
                     calibrate, quiet, as_json) -> None:
    """Simulate plausible incidents (deterministic by --seed) and load and/or write them.

    With --load (the default) the rows fill the active generation's grids and go through the
    same path as `gridgov incidents import` (the -o file itself when one is written); with
    --cases (the default) each loaded incident then gets a case walked through the workflow.
    """
    from etl.simulate import area_from_engine, area_from_file, default_area_file, simulate, write
    from etl.simulate_cases import SIMULATION_TOML, SimulationConfig
    from gis.database import get_engine

    knobs = knobs or SIMULATION_TOML
    if calibrate:
        _calibrate(seed, start.date(), end.date(), count, knobs)
        return
    if not load and output is None:
        raise click.UsageError("--no-load needs -o/--output")
    try:
        config = SimulationConfig.load(knobs)
        area = (area_from_engine(get_engine()) if load
                else area_from_file(outline or default_area_file()))
        frame = simulate(area, seed=seed, start=start.date(), end=end.date(), count=count,
                         dirty=dirty, year_weights=config.occurrence())
        if output is not None:
            write(frame, output)
    except (LookupError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"simulated {len(frame):,} incidents (seed {seed}, {start:%Y-%m-%d} to "
               f"{end:%Y-%m-%d}, dirty share {dirty:g})" + (f"; wrote {output}" if output else ""),
               err=as_json)
    if load:
        walk = (start.date(), end.date(), config) if cases else None
        _run_import(lambda engine, progress: _load_simulated(engine, frame, output, seed,
                                                             progress, walk), quiet, as_json)


def _load_simulated(engine, frame, output, seed, progress, walk=None):
    from etl.incidents import FrameReader, ImportOptions, import_file, import_reader

    if output is not None:
        options = ImportOptions(crs="wgs84")
        summary = import_file(engine, output, options, progress=progress)
    else:
        # no input file to sit beside: the quarantine file goes under GRIDGOV_HOME
        name = f"simulated-incidents-seed{seed}"
        rejects = get_settings().home / "rejects" / f"{name}.rejects.csv"
        rejects.parent.mkdir(parents=True, exist_ok=True)
        options = ImportOptions(crs="wgs84", rejects=rejects)
        reader = FrameReader(frame, name=name, crs="wgs84")
        summary = import_reader(engine, reader, options, progress=progress)
    if walk is not None and not options.dry_run:
        _simulate_cases(engine, seed, *walk)
    return summary


def _simulate_cases(engine, seed, start, end, config) -> None:
    """Cases for the loaded incidents. The line goes to stderr before the import summary, so
    that --json prints one JSON document."""
    from etl.incidents import ImportSetupError
    from etl.simulate_cases import load_cases

    try:
        summary = load_cases(engine, seed=seed, start=start, end=end, config=config)
    except Exception as exc:
        raise ImportSetupError(f"the incidents were loaded, but not their cases: "
                               f"{type(exc).__name__}: {exc}") from exc
    click.echo(summary.to_text(), err=True)


def _calibrate(seed, start, end, count, knobs: Path) -> None:
    """`gridgov simulate --calibrate`: tune the knobs, write them, print the figures."""
    from etl.simulate_cases import SimulationConfig, calibrate
    from gis.database import database_url

    config = SimulationConfig.load(knobs) if knobs.exists() else SimulationConfig.initial()
    try:
        tuned, figures, share = calibrate(database_url(), seed=seed, start=start, end=end,
                                          count=count, config=config, log=click.echo)
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    tuned.dump(knobs)
    for year_figures in figures:
        click.echo(year_figures.to_text())
    click.echo(f"occurrence per km² fell in {share:.1%} of the communities; knobs written to "
               f"{knobs}")


# -- gridgov cases -------------------------------------------------------------------------------
@main.group()
def cases() -> None:
    """Cases: the workflow's figures."""


@cases.command("summary")
@click.option("--period", default=None, help="2019, 2019Q2, 2019-05 or 2019-01-01..2019-03-31 "
              "(default: the current year).")
@click.option("--json", "as_json", is_flag=True)
def cases_summary(period: str | None, as_json: bool) -> None:
    """Case counts per state and per department, with overdue, late, reworked and returned."""
    from datetime import datetime

    from gis.case_summary import summarise_cases
    from gis.database import get_engine
    from gis.periods import SHANGHAI, parse_period

    now = datetime.now(SHANGHAI)
    try:
        chosen = parse_period(period or str(now.year))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    with get_engine().connect() as conn:
        summary = summarise_cases(conn, chosen, now)
    if as_json:
        _echo_json(summary.to_dict())
        return
    click.echo(f"cases reported in {summary.period}: {summary.total}")
    for state, count in summary.by_state.items():
        click.echo(f"  {state:<14} {count:>8}")
    click.echo(f"overdue (open): {summary.overdue_open}   closed late: {summary.closed_late}   "
               f"reworked: {summary.reworked}   returned: {summary.returned}")
    click.echo(f"{'department':<32} {'cases':>8} {'closed':>8} {'overdue':>8} {'reworked':>8}")
    for row in summary.by_department:
        click.echo(f"{row['department']:<32} {row['cases']:>8} {row['closed']:>8} "
                   f"{row['overdue']:>8} {row['reworked']:>8}")


# -- gridgov users -------------------------------------------------------------------------------
@main.group()
def users() -> None:
    """Accounts of the web platform and API tokens."""


def _ids_for(conn, staff_code: str | None, department_code: str | None) -> tuple:
    from sqlalchemy import text

    staff_id = department_id = None
    if staff_code:
        staff_id = conn.execute(text("SELECT id FROM staff WHERE code = :c"),
                                {"c": staff_code}).scalar()
        if staff_id is None:
            raise click.BadParameter(f"no staff member {staff_code!r}", param_hint="--staff")
    if department_code:
        department_id = conn.execute(text("SELECT id FROM department WHERE code = :c"),
                                     {"c": department_code}).scalar()
        if department_id is None:
            raise click.BadParameter(f"no department {department_code!r}",
                                     param_hint="--department")
    return staff_id, department_id


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(
    ["admin", "acceptor", "shift_leader", "dispatcher", "handler", "grid_leader", "grid_worker",
     "supervisor", "viewer"]))
@click.option("--name", "display_name", help="Name shown in the interface and the trail.")
@click.option("--staff", "staff_code", help="Staff code (grid staff act in that person's grids).")
@click.option("--department", "department_code", help="Department code (handlers).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted for when not given (use the prompt: it stays out of the history).")
def users_create(username, role, display_name, staff_code, department_code, password) -> None:
    """Create an account."""
    from gis.accounts import AccountError, create_user
    from gis.database import get_engine

    with get_engine().begin() as conn:
        staff_id, department_id = _ids_for(conn, staff_code, department_code)
        try:
            user_id = create_user(conn, username, password, role, display_name=display_name,
                                  staff_id=staff_id, department_id=department_id)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"user {username} created (id {user_id}, role {role})")


@users.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--days", type=click.IntRange(min=1), help="Expire after this many days.")
def users_token(username: str, name: str, days: int | None) -> None:
    """Issue an API token (printed once; only its hash is kept)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from gis.accounts import issue_token
    from gis.database import get_engine

    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    with get_engine().begin() as conn:
        user_id = conn.execute(text("SELECT id FROM user_account WHERE username = :u"),
                               {"u": username}).scalar()
        if user_id is None:
            raise click.ClickException(f"no user {username!r}")
        click.echo(issue_token(conn, user_id, name, expires))


@users.command("list")
def users_list() -> None:
    """List accounts."""
    from sqlalchemy import text

    from gis.database import get_engine

    with get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT username, role, display_name, active FROM user_account ORDER BY username"))
        for username, role, display_name, active in rows:
            click.echo(f"{username:<24} {role:<14} {display_name}{'' if active else ' (off)'}")


@users.command("demo")
def users_demo() -> None:
    """One demo account per role, with generated passwords written to GRIDGOV_HOME/demo-users.txt
    (mode 0600) and printed once. Existing demo accounts are left as they are."""
    from etl.demo_users import create_demo_users
    from gis.database import get_engine

    path, created = create_demo_users(get_engine(), get_settings().home)
    for username, role, password in created:
        click.echo(f"{username:<16} {role:<14} {password}")
    click.echo(f"demo accounts: {path}")


# -- gridgov heatmap -----------------------------------------------------------------------------
@main.command("heatmap")
@click.option("--indicator", default="occurrence_per_km2_month", show_default=True,
              help="Indicator of gis.indicators to map (list: docs/MAPS.md).")
@click.option("--level", type=click.Choice(["street", "community", "grid"]), default="community",
              show_default=True, help="Level shown first (the others are switchable layers).")
@click.option("--period", help="2019, 2019Q2, 2019-05 or 2019-01-01..2019-03-31 (default: the "
              "last complete year with cases, else the current year).")
@click.option("--compare", metavar="PERIOD", help="Map the change from PERIOD to --period.")
@click.option("--side-by-side", is_flag=True,
              help="With --compare: the two periods side by side instead of the change.")
@click.option("--scheme", default="quantiles", show_default=True,
              type=click.Choice(["quantiles", "natural_breaks", "fisher_jenks", "equal_interval"]))
@click.option("-k", "--classes", "k", default=5, show_default=True, type=click.IntRange(2, 9))
@click.option("--base", type=click.Choice(["none", "osm", "amap"]), default="none",
              show_default=True, help="Online base map (amap shifts the layers to GCJ-02).")
@click.option("--class", "class_code", help="Heat layer: an incident class code or prefix.")
@click.option("--source", help="Heat layer: incidents of this source only.")
@click.option("--heat/--no-heat", default=True, show_default=True, help="Incident heat layer.")
@click.option("--show-heat", is_flag=True, help="Show the heat layer on opening.")
@click.option("--only-level", is_flag=True, help="Only the chosen level (a lighter page).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def heatmap(indicator, level, period, compare, side_by_side, scheme, k, base, class_code,
            source, heat, show_heat, only_level, output: Path) -> None:
    """Write a self-contained HTML heat map of an indicator per management unit."""
    from gis.case_summary import default_period
    from gis.database import get_engine
    from webmap.heatmaps import indicator_map, options_from
    from webmap.maps import render_standalone

    engine = get_engine()
    given = {"indicator": indicator, "level": level, "period": period, "compare": compare,
             "scheme": scheme, "k": str(k), "base": base, "class": class_code, "source": source,
             "heat": str(int(heat)), "show_heat": str(int(show_heat)),
             "only": str(int(only_level)), "layout": "dual" if side_by_side else "change"}
    try:
        with engine.connect() as conn:
            options = options_from(given, default_period(conn))
        page = render_standalone(indicator_map(engine, options), options.title)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_text(page, encoding="utf-8")
    click.echo(f"wrote {output} ({len(page.encode()):,} bytes): {options.title}")


# -- gridgov supervision -------------------------------------------------------------------------
_DAY = click.DateTime(["%Y-%m-%d"])


@main.group()
def supervision() -> None:
    """Spot-check list, target and inspector registries, plans (双随机、一公开)."""


@supervision.command("load")
@click.option("--dir", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Supervision folder (default: data/catalogues/supervision, demo data).")
@click.option("--on", type=_DAY, help="Apply the credit rules as of this day (default: the "
              "folder's as_of, else today).")
def supervision_load(folder: Path | None, on) -> None:
    """Load items, targets, inspectors, relations, plans and credit records (all or nothing)."""
    from etl.supervision import SUPERVISION_DIR, SupervisionDataError, load_supervision
    from gis.database import get_engine

    try:
        counts = load_supervision(get_engine(), folder or SUPERVISION_DIR,
                                  on=on.date() if on else None)
    except SupervisionDataError as exc:
        raise click.ClickException(f"nothing was loaded: {exc}") from exc
    click.echo("loaded " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@supervision.command("demo")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (default: data/catalogues/supervision).")
@click.option("--boundaries", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=SHIPPED_BOUNDARIES, show_default=True, help="GeoPackage of the grids.")
@click.option("--seed", default=2019, show_default=True, type=int)
@click.option("--targets", default=600, show_default=True, type=click.IntRange(min=1))
def supervision_demo(out: Path | None, boundaries: Path, seed: int, targets: int) -> None:
    """Generate the demo supervision folder (deterministic by --seed)."""
    from etl.supervision import SUPERVISION_DIR
    from etl.supervision_demo import generate_demo
    from gis.partition import read_geopackage

    counts = generate_demo(read_geopackage(boundaries), out or SUPERVISION_DIR, seed=seed,
                           targets=targets)
    click.echo(f"wrote {out or SUPERVISION_DIR}: " + ", ".join(f"{n} {k}"
                                                                for k, n in counts.items()))


# -- gridgov checks ------------------------------------------------------------------------------
@main.group()
def checks() -> None:
    """Spot-check draws: draw, verify, list, show, record results, export the public list."""


@checks.command("draw")
@click.option("--plan", "plan_name", required=True, help="Plan name (e.g. demo).")
@click.option("--period", help="Default: the plan's period.")
@click.option("--seed", help="Seed of the draw (default: a random 64-bit number, recorded).")
@click.option("--reason", default="", help="Why the plan is drawn again for the period.")
@click.option("--by", "drawn_by", default="", help="Who draws.")
@click.option("--json", "as_json", is_flag=True)
def checks_draw(plan_name, period, seed, reason, drawn_by, as_json) -> None:
    """Draw targets and inspectors for a plan and record the draw (append-only)."""
    from gis.database import get_engine
    from gis.spotcheck import SpotCheckError, draw

    try:
        with get_engine().begin() as conn:
            record = draw(conn, plan_name, period=period, seed=seed, reason=reason,
                          drawn_by=drawn_by)
    except SpotCheckError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(record.to_dict())
        return
    click.echo(f"draw {record.id}")
    click.echo(f"  plan {record.plan}, period {record.period}, draw #{record.seq}, seed "
               f"{record.seed}: {record.visits} visits")
    click.echo(f"  inputs sha256 {record.inputs_sha256}")
    click.echo(f"  result sha256 {record.result_sha256}")
    for short in record.understaffed:
        click.echo(f"  understaffed: {short['target']}: " + "; ".join(
            f"{s['item']} has {s['available']} of {s['needed']} inspectors"
            for s in short["shortfall"]), err=True)


@checks.command("verify")
@click.argument("draw_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def checks_verify(draw_id: int, as_json: bool) -> None:
    """Recompute a draw from its recorded seed and inputs; exit 1 if it does not match."""
    from gis.database import get_engine
    from gis.spotcheck import SpotCheckError, verify_draw

    try:
        with get_engine().connect() as conn:
            result = verify_draw(conn, draw_id)
    except SpotCheckError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(result.to_dict())
    else:
        for label, ok in (("recorded inputs intact", result.inputs_intact),
                          ("result reproduced from seed and inputs", result.result_reproduced),
                          ("visits match the result", result.visits_match),
                          ("today's registries give the same inputs", result.inputs_current)):
            click.echo(f"{'yes' if ok else 'NO ':<4} {label}")
        click.echo(f"draw {draw_id}: {'verified' if result.ok else 'DOES NOT VERIFY'}")
    if not result.ok:
        sys.exit(1)


@checks.command("list")
@click.option("--plan", "plan_name")
@click.option("--json", "as_json", is_flag=True)
def checks_list(plan_name: str | None, as_json: bool) -> None:
    """Every draw, redraws included, newest first."""
    from gis.database import get_engine
    from gis.spotcheck import list_draws

    with get_engine().connect() as conn:
        draws = list_draws(conn, plan_name)
    if as_json:
        _echo_json(draws)
        return
    for d in draws:
        click.echo(f"{d['id']:>5}  {d['plan']:<16} {d['period']:<10} #{d['seq']}  "
                   f"{d['visits']:>5} visits  seed {d['seed']}"
                   + (f"  (again: {d['reason']})" if d["seq"] > 1 else ""))


@checks.command("show")
@click.argument("draw_id", type=int)
def checks_show(draw_id: int) -> None:
    """The public view of a draw as JSON (personal data masked)."""
    from gis.database import get_engine
    from gis.spotcheck import SpotCheckError, public_draw

    try:
        with get_engine().connect() as conn:
            _echo_json(public_draw(conn, draw_id))
    except SpotCheckError as exc:
        raise click.ClickException(str(exc)) from exc


@checks.command("record")
@click.argument("visit_id", type=int)
@click.argument("item_code")
@click.option("--outcome", required=True, type=click.Choice(
    ["compliant", "rectify", "penalty_referred", "not_found"]))
@click.option("--inspectors", required=True, help="Codes of those who inspected, comma-separated.")
@click.option("--recorder", required=True, help="Code of the inspector who records.")
@click.option("--on", "inspected_on", required=True, type=_DAY, help="Day of the inspection.")
@click.option("--findings", default="")
def checks_record(visit_id, item_code, outcome, inspectors, recorder, inspected_on,
                  findings) -> None:
    """Record the result of one item of a visit (who inspects, who records)."""
    from gis.database import get_engine
    from gis.spotcheck import SpotCheckError, record_result

    try:
        with get_engine().begin() as conn:
            result_id = record_result(
                conn, visit_id, item_code, outcome, inspected_on=inspected_on.date(),
                inspectors=[c.strip() for c in inspectors.split(",") if c.strip()],
                recorded_by=recorder, findings=findings)
    except SpotCheckError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"result {result_id} recorded")


@checks.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plan", "plan_name")
@click.option("--period")
def checks_export(file: Path, plan_name: str | None, period: str | None) -> None:
    """Write the public results (.json, else CSV), personal data masked."""
    from etl.supervision import write_public_results
    from gis.database import get_engine
    from gis.spotcheck import public_results

    with get_engine().connect() as conn:
        rows = public_results(conn, plan=plan_name, period=period)
    click.echo(f"wrote {write_public_results(rows, file)} results to {file}")


# -- gridgov credit ------------------------------------------------------------------------------
@main.group()
def credit() -> None:
    """Credit records: exchange import and export, queries, list and level rules."""


@credit.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="city", show_default=True,
              type=click.Choice(["local", "city", "province"]),
              help="Source of records that do not say.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Rejects file (default: FILE.rejects.jsonl).")
@click.option("--on", type=_DAY, help="Apply the rules as of this day (default: today).")
@click.option("--json", "as_json", is_flag=True)
def credit_import(file: Path, source: str, rejects: Path | None, on, as_json: bool) -> None:
    """Import an exchange file (JSON Lines); idempotent by record id, rejects kept."""
    from etl.supervision import import_credit_file
    from gis.database import get_engine

    summary = import_credit_file(get_engine(), file, source=source, rejects=rejects,
                                 on=on.date() if on else None)
    if as_json:
        _echo_json(summary.to_dict())
        return
    click.echo(f"import {summary.import_id}: {summary.inserted} inserted, {summary.updated} "
               f"updated, {summary.unchanged} unchanged, {summary.rejected} rejected")
    for reject in summary.rejects[:20]:
        click.echo(f"  line {reject['line']}: {reject['field']}: {reject['reason']}", err=True)


@credit.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", type=_DAY, help="Only records changed on or after this day.")
@click.option("--source", "sources", multiple=True,
              type=click.Choice(["local", "city", "province"]),
              help="Only records from this source (repeatable; default: all).")
def credit_export(file: Path, since, sources) -> None:
    """Write records in the exchange format (JSON Lines, or CSV for a .csv file)."""
    from etl.supervision import export_credit_file
    from gis.database import get_engine

    count = export_credit_file(get_engine(), file, since=since.date() if since else None,
                               sources=tuple(sources) or None)
    click.echo(f"wrote {count} records to {file}")


@credit.command("query")
@click.argument("term")
@click.option("--on", type=_DAY, help="List membership as of this day (default: today).")
@click.option("--json", "as_json", is_flag=True)
def credit_query(term: str, on, as_json: bool) -> None:
    """Find subjects by credit code, ID number, id or part of the name (identifiers masked)."""
    from gis.credit import find_subjects, subject_profile
    from gis.database import get_engine

    with get_engine().connect() as conn:
        profiles = [subject_profile(conn, i, on.date() if on else None)
                    for i in find_subjects(conn, term)]
    if as_json:
        _echo_json(profiles)
        return
    if not profiles:
        raise click.ClickException(f"no subject matches {term!r}")
    for p in profiles:
        click.echo(f"{p['identifier']}  {p['name']}  ({p['kind']}) level {p['level'] or '-'}: "
                   f"{p['level_reason']}")
        for e in p["lists"]:
            state = "active" if e["active"] else f"removed {e['removed_on']}"
            click.echo(f"  {e['list_name']:<9} {e['entered_on']}  {state:<18} {e['reason']}")
        click.echo(f"  {len(p['records'])} records")


@credit.command("refresh")
@click.option("--on", type=_DAY, help="As of this day (default: today).")
def credit_refresh(on) -> None:
    """Apply the list rules and derive credit levels for every subject."""
    from datetime import date

    from gis.credit import refresh
    from gis.database import get_engine

    with get_engine().begin() as conn:
        summary = refresh(conn, on.date() if on else date.today())
    click.echo(f"{summary.subjects} subjects: {summary.entered} entries added, "
               f"{summary.changed} changed; levels " + ", ".join(
                   f"{k} {v}" for k, v in sorted(summary.levels.items())))


# -- gridgov warnings ----------------------------------------------------------------------------
@main.group("warnings")
def warnings_group() -> None:
    """Risk early warning: Poisson control chart and Gi* hot spots per grid."""


@warnings_group.command("scan")
@click.option("--period", help="2019-05, 2019Q2, 2019 or a day range (default: last month).")
@click.option("--lines", default="food_drug,production_safety,environment", show_default=True)
@click.option("--by", type=click.Choice(["line", "class"]), default="line", show_default=True)
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1,
              min_open=True), help="Family-wise level of the Poisson chart (Bonferroni).")
@click.option("--fdr", default=0.05, show_default=True, type=click.FloatRange(0, 1,
              min_open=True), help="False-discovery rate of the Gi* hot spots.")
@click.option("--baseline-days", default=365, show_default=True, type=click.IntRange(min=1))
@click.option("--min-count", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--seasonal/--no-seasonal", default=True, show_default=True,
              help="Scale each series' expected count by its seasonal factor, estimated from "
                   "the same window of earlier years (docs/SUPERVISION.md §5).")
@click.option("--dry-run", is_flag=True, help="Report only: record no warning or notice.")
@click.option("--map", "map_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an offline HTML map of the warnings.")
@click.option("--json", "as_json", is_flag=True)
def warnings_scan(period, lines, by, alpha, fdr, baseline_days, min_count, seasonal, dry_run,
                  map_file, as_json) -> None:
    """Scan a period; record new warnings and route each to its department with a notice."""
    from datetime import datetime

    from gis.database import get_engine
    from gis.periods import SHANGHAI, parse_period
    from gis.warnings import ScanOptions, scan

    if period is None:
        today = datetime.now(SHANGHAI).date().replace(day=1)
        period = f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"
    try:
        chosen = parse_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    options = ScanOptions(lines=tuple(x.strip() for x in lines.split(",") if x.strip()), by=by,
                          alpha=alpha, fdr=fdr, baseline_days=baseline_days,
                          min_count=min_count, seasonal=seasonal)
    engine = get_engine()
    try:
        with engine.begin() as conn:
            result = scan(conn, chosen, options, record=not dry_run)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    if map_file is not None:
        _write_warning_map(engine, result, map_file)
    if as_json:
        _echo_json(result.to_dict())
        return
    click.echo(f"{chosen.label}: {len(result.warnings)} warnings ({result.new} new) over "
               f"{result.n_series} series; Poisson threshold p ≤ {result.poisson_threshold:.2e}")
    if result.seasonal:
        click.echo("  seasonal factors: " + ", ".join(
            f"{name} {f['factor']:.2f} ({f['years']} earlier year{'s' * (f['years'] != 1)})"
            for name, f in result.seasonal_factors.items()))
    else:
        click.echo("  seasonal factors: off")
    for w in result.warnings:
        notice = w.get("notice")
        click.echo(f"  {w['method']:<8} {w['series']:<18} {w['grid_code']}  observed "
                   f"{w['observed']:.0f} expected {w['expected']:.2f}  p {w['p_value']:.2e}"
                   + (f"  → {notice['handler']}" if notice else ""))


def _write_warning_map(engine, result, path: Path) -> None:
    from gis.warnings import read_grids
    from webmap.maps import render_standalone
    from webmap.warning_maps import build_warnings_map

    with engine.connect() as conn:
        grids = read_grids(conn, result.generation_id)
    page = render_standalone(build_warnings_map(grids, result.warnings),
                             f"风险预警 {result.period}")
    path.write_text(page, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


@warnings_group.command("list")
@click.option("--period")
@click.option("--json", "as_json", is_flag=True)
def warnings_list(period: str | None, as_json: bool) -> None:
    """Recorded warnings and where their notices went."""
    from gis.database import get_engine
    from gis.warnings import list_warnings

    with get_engine().connect() as conn:
        rows = list_warnings(conn, period)
    if as_json:
        _echo_json(rows)
        return
    for w in rows:
        click.echo(f"{w['id']:>5} {w['period']:<10} {w['method']:<8} {w['series']:<18} "
                   f"{w['grid_code']}  {w['observed']:.0f}/{w['expected']:.2f}  "
                   f"→ {w['handler'] or '-'}")


if __name__ == "__main__":  # pragma: no cover
    main()

