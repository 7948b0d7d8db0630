"""The mesh's ``@timer``: nameko's, taking ``async def`` methods too
(``mesh.coroutines``).

    @timer(interval=1.0)
    async def relay_outbox(self): ...
"""
from nameko.timer import Timer

from mesh.coroutines import accepting_coroutines

timer = accepting_coroutines(Timer.decorator)
