"""The billing-mesh services: ``nameko run --config config.yaml services.<name>``.

They run on eventlet's asyncio hub however they are started: importing this
package under a ``nameko run`` that picked another hub (``EVENTLET_HUB`` unset,
outside the project's venv) starts the same command again on it
(``mesh.hub.ensure_asyncio_hub``).
"""
from mesh.hub import ensure_asyncio_hub

ensure_asyncio_hub()
