"""The console's frame: navigation declared as data, generic views, tables and template tags.

Each app adds its pages with a `urls.py` of console views built on `atp_site.console.views`
and one entry in `navigation.MENU`; templates extend `console/base.html` and reuse the
partials in `templates/console/partials/`.
"""
