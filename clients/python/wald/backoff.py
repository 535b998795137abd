"""backoff_delay: how long a client waits before a retry or a reconnect."""
import random


def backoff_delay(attempt, initial, maximum):
    """The delay (s) before retry ``attempt`` (0-based): ``initial`` doubled per attempt, capped at ``maximum``, drawn between half and all of it (jitter)."""
    step = min(maximum, initial * 2 ** min(attempt, 30))
    return step * (0.5 + random.random() / 2)
