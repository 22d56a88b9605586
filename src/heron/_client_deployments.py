"""``heron.Client`` methods for endpoints (traffic splits, rollback), predictions and
feedback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._client_base import ClientBase
from heron._entities import Page

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from heron._deployments import (
        Endpoint,
        EndpointRevision,
        ResolvedEndpoint,
        StickyKey,
        Target,
    )
    from heron._predictions import (
        FeedbackItem,
        FeedbackResult,
        PredictionLogFile,
        PredictionRecord,
    )


class DeploymentMethods(ClientBase):
    """Endpoints, predictions and feedback; ``Client`` inherits these."""

    # --- endpoints and predictions -----------------------------------------------------

    def create_endpoint(
        self,
        name: str,
        targets: list[Target | str],
        shadow: list[Target | str] | None = None,
        sticky: StickyKey | str | None = None,
        description: str = "",
        comment: str = "",
    ) -> Endpoint:
        """An endpoint serving ``targets``: ``["cancer-clf@champion"]``, or weighted
        ``["cancer-clf@champion:90", "cancer-clf@challenger:10"]``."""
        return self._call(
            "create_endpoint",
            name=name,
            targets=targets,
            shadow=shadow,
            sticky=sticky,
            description=description,
            comment=comment,
        )

    def get_endpoint(self, name: str) -> Endpoint:
        return self._call("get_endpoint", name=name)

    def list_endpoints(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[Endpoint]:
        return self._call("list_endpoints", max_results=max_results, page_token=page_token)

    def update_endpoint(
        self,
        name: str,
        targets: list[Target | str] | None = None,
        shadow: list[Target | str] | None = None,
        sticky: StickyKey | str | None = None,
        clear_sticky: bool = False,
        description: str | None = None,
        comment: str = "",
    ) -> Endpoint:
        return self._call(
            "update_endpoint",
            name=name,
            targets=targets,
            shadow=shadow,
            sticky=sticky,
            clear_sticky=clear_sticky,
            description=description,
            comment=comment,
        )

    def rollback_endpoint(self, name: str, to_revision: int | None = None) -> Endpoint:
        return self._call("rollback_endpoint", name=name, to_revision=to_revision)

    def list_endpoint_revisions(self, name: str) -> list[EndpointRevision]:
        return self._call("list_endpoint_revisions", name=name)

    def resolve_endpoint(self, name: str) -> ResolvedEndpoint:
        return self._call("resolve_endpoint", name=name)

    def list_predictions(
        self,
        endpoint: str,
        start: datetime | None = None,
        end: datetime | None = None,
        include_shadow: bool = True,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[PredictionRecord]:
        return self._call(
            "list_predictions",
            endpoint=endpoint,
            start=start,
            end=end,
            include_shadow=include_shadow,
            max_results=max_results,
            page_token=page_token,
        )

    def log_feedback(
        self, endpoint: str, feedback: list[FeedbackItem | dict[str, Any]]
    ) -> FeedbackResult:
        """Ground truth for earlier requests: ``[{"request_id": ..., "label": ...}]``."""
        return self._call("log_feedback", endpoint=endpoint, feedback=feedback)

    # --- the Parquet prediction log (heron serve --parquet-log) ----------------------------

    def list_prediction_log_files(
        self,
        endpoint: str,
        since: datetime | None = None,
        until: datetime | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PredictionLogFile]:
        """Parquet files of ``endpoint``'s sampled raw log with requests in [since, until)."""
        return self._call(
            "list_prediction_log_files",
            endpoint=endpoint,
            since=since,
            until=until,
            max_results=max_results,
            page_token=page_token,
        )

    def read_prediction_log(
        self, endpoint: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """The Parquet log's rows of ``endpoint`` with ``since <= time < until``, oldest
        first, as one DataFrame (``inputs`` and ``outputs`` are JSON text)."""
        from heron._serving._parquet import read_log_files

        with tempfile.TemporaryDirectory(prefix="heron-parquet-") as scratch:
            paths: list[Path] = []
            token: str | None = None
            while True:
                page = self.list_prediction_log_files(
                    endpoint, since, until, max_results=1000, page_token=token
                )
                for file in page.items:
                    dest = Path(scratch) / f"{file.id}.parquet"
                    paths.append(self.transport.fetch_blob(file.digest, dest))
                token = page.next_page_token
                if token is None:
                    break
            return read_log_files(paths, since, until)
