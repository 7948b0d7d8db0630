"""Token buckets per client: ``rate`` requests a second on average, ``burst``
at once.

    buckets = TokenBuckets(rate=50, burst=100)
    wait = buckets.take("alice")     # 0.0: go on; else the seconds until one is free

Written here rather than taken from a library: ``limits`` and
``pyrate-limiter`` count fixed or sliding windows, not a bucket whose state
says when the next request may come (``Retry-After``), and the whole of it is
the arithmetic below. Not thread-safe on its own: the gateway runs it in
greenthreads, which do not switch inside ``take``.
"""
import time

# buckets kept; when full, those refilled to the brim (the idle clients) go
# first, and if none is, all of them
MAX_CLIENTS = 100_000


class TokenBuckets:
    """One bucket per key; ``rate`` <= 0 turns the limit off."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self.clock = clock
        self.buckets = {}  # key -> (tokens, when they were counted)

    @property
    def on(self):
        return self.rate > 0

    def take(self, key):
        """Take one token from ``key``'s bucket: 0.0 if there was one, else
        the seconds until there is (nothing is taken then)."""
        if not self.on:
            return 0.0
        now = self.clock()
        tokens, then = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if key not in self.buckets and len(self.buckets) >= MAX_CLIENTS:
            self._forget_idle(now)
        self.buckets[key] = (tokens - 1.0, now)
        return 0.0

    def _forget_idle(self, now):
        self.buckets = {key: (tokens, then) for key, (tokens, then) in self.buckets.items()
                        if tokens + (now - then) * self.rate < self.burst}
        if len(self.buckets) >= MAX_CLIENTS:
            self.buckets.clear()
