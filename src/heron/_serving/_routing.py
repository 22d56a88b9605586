"""Traffic routing: which loaded version answers a request.

A :class:`Routing` is an immutable snapshot of one endpoint state (revision + resolved
versions). A request takes the current snapshot once and uses it to the end, so switching
revisions is one reference assignment: requests already running finish on the versions they
started with, which stay alive as long as a request holds them.

Sticky routing hashes the key with CRC-32 (not Python's ``hash``, which differs between
processes), so every replica and worker sends one key to the same variant.
"""

from __future__ import annotations

import bisect
import random
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heron._deployments import ResolvedEndpoint, StickyKey
    from heron._serving._model import ServedModel


@dataclass(frozen=True, eq=False)
class Routing:
    endpoint: ResolvedEndpoint
    variants: tuple[ServedModel, ...]
    cumulative: tuple[int, ...]  # running sum of weights, one per variant
    shadows: tuple[ServedModel, ...]
    sticky: StickyKey | None
    sticky_header: bytes | None
    revision: int  # the endpoint's, read by every logged request

    @classmethod
    def build(
        cls, endpoint: ResolvedEndpoint, models: dict[tuple[str, int], ServedModel]
    ) -> Routing:
        variants, cumulative, total = [], [], 0
        for target in endpoint.targets:
            if target.weight <= 0:
                continue
            total += target.weight
            variants.append(models[(target.model, target.version)])
            cumulative.append(total)
        sticky = endpoint.sticky
        header = sticky.name.lower().encode() if sticky and sticky.source == "header" else None
        return cls(
            endpoint=endpoint,
            variants=tuple(variants),
            cumulative=tuple(cumulative),
            shadows=tuple(models[(s.model, s.version)] for s in endpoint.shadow),
            sticky=sticky,
            sticky_header=header,
            revision=endpoint.revision,
        )

    def choose(self, scope: dict[str, Any], data: Any) -> ServedModel:
        if len(self.variants) == 1:
            return self.variants[0]
        total = self.cumulative[-1]
        key = self._sticky_key(scope, data) if self.sticky is not None else None
        point = random.random() * total if key is None else zlib.crc32(key) % total
        return self.variants[bisect.bisect_right(self.cumulative, point)]

    def _sticky_key(self, scope: dict[str, Any], data: Any) -> bytes | None:
        assert self.sticky is not None
        if self.sticky_header is not None:
            for name, value in scope["headers"]:
                if name == self.sticky_header:
                    return bytes(value)
            return None
        column = self.sticky.name
        try:
            if isinstance(data, list):
                value = data[0].get(column)
            else:
                value = data["data"][0][data["columns"].index(column)]
        except (ValueError, IndexError, KeyError, AttributeError):
            return None
        return None if value is None else str(value).encode()
