"""The browser player: its HTML, scripts and styles, served at ``/client/``.

The sources live in ``web_client/`` at the top of the tree; pyproject.toml maps the folder into
the package as ``orpheus_ws.web_client``, so wheels and editable installs both carry it. This
file makes it a regular package, which setuptools' editable finder needs to map it.
"""
