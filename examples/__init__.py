"""Programs that use the mesh from outside it, as a team's own code would.

- ``aio_app``: an asyncio HTTP app (aiohttp) answering from the mesh through
  ``mesh.aio``: ``python -m examples.aio_app --port 8080 --config config.yaml``.
"""
