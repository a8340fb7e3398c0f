"""Spread the transfers of a file over several upstream sources of one repository.

Pure bookkeeping, no I/O: each source (by origin) has a measured throughput, a penalty that
grows with failures, and a count of transfers in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

_ORIGINS: dict[str, str] = {}  # scheme://netloc -> origin (a run sees a handful)


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (credentials left out)."""
    end = url.find("/", url.find("://") + 3)
    netloc = url if end < 0 else url[:end]
    found = _ORIGINS.get(netloc)
    if found is None:
        parts = urlsplit(netloc)
        found = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        if len(_ORIGINS) < 1024:
            _ORIGINS[netloc] = found
    return found


@dataclass(slots=True)
class _Source:
    rate: float = 1_000_000.0  # bytes/s, moving average of completed transfers
    penalty: float = 0.0  # grows with each failure, halves with each success
    active: int = 0


class SourceBalancer:
    """Spreads transfers over the upstream sources (by origin) of a repository.

    A transfer goes to the source with the least ``(active + 1) / weight``, where the weight
    is the measured throughput divided by ``1 + 4 * penalty``: equal sources share the load,
    a faster one gets more, one that fails or serves bad data gets little until it recovers.
    """

    def __init__(self) -> None:
        self._by_origin: dict[str, _Source] = {}

    def _get(self, url: str) -> _Source:
        return self._by_origin.setdefault(origin(url), _Source())

    def weight(self, url: str) -> float:
        src = self._get(url)
        return src.rate / (1.0 + 4.0 * src.penalty)

    def pick(self, urls: list[str]) -> str:
        return min(urls, key=lambda u: ((self._get(u).active + 1) / self.weight(u), urls.index(u)))

    def begin(self, url: str) -> None:
        self._get(url).active += 1

    def release(self, url: str) -> None:
        """The transfer ended without telling anything about the source."""
        src = self._get(url)
        src.active = max(0, src.active - 1)

    def penalise(self, url: str) -> None:
        self._get(url).penalty += 1.0

    def end(
        self, url: str, *, ok: bool, bad_data: bool = False, nbytes: int = 0, seconds: float = 0.0
    ) -> None:
        src = self._get(url)
        src.active = max(0, src.active - 1)
        if not ok:
            src.penalty += 2.0 if bad_data else 1.0
            return
        src.penalty /= 2.0
        if nbytes >= 64 * 1024 and seconds > 0:  # small files measure latency, not rate
            src.rate = 0.7 * src.rate + 0.3 * (nbytes / seconds)
