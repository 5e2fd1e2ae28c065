"""A per-client rate limit, in the process' memory: clients are never stored anywhere."""

import time
from collections import deque

# Past this many clients tracked, those with no recent event are forgotten.
MAX_TRACKED = 10_000


class RateLimiter:
    """At most `limit` events per `window` seconds per client (a sliding window)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.events: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """None, and the event counted, if the client is within its limit; otherwise the
        seconds until it will be."""
        now = time.monotonic()
        if len(self.events) > MAX_TRACKED:
            self.forget_idle(now)
        recent = self.events.setdefault(client, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            return recent[0] + self.window - now
        recent.append(now)
        return None

    def forget_idle(self, now: float) -> None:
        self.events = {
            client: recent
            for client, recent in self.events.items()
            if recent and recent[-1] > now - self.window
        }
