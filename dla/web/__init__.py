"""The web workbench (``dla serve``): a thin FastAPI layer over the same library the CLI uses.

``create_app(data_dir, database_url, allow_signup)`` in ``dla.web.app`` builds the app; see
docs/workbench.md.
"""
