"""The gridgov web application: ``flask --app app run`` or a WSGI server loads this module.

    flask --app app run                              # development server
    waitress-serve --call app:create_app            # production, as ``gridgov serve`` does

The factory itself is :func:`webmap.create_app` (inside the installed package, so that
``gridgov serve`` can import it from any folder); this module is its entry point.
"""

from __future__ import annotations

from webmap import create_app

__all__ = ["create_app"]
