"""Describing a dataset where it lives: content digest, schema, row count, profile."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heron._entities import ColumnSchema
from heron._errors import InvalidInput, NotFound


@dataclass
class DescribedDataset:
    digest: str
    columns: list[ColumnSchema]
    row_count: int
    profile: dict[str, Any]
    data_file: Path
    format: str
    source: str


def frame_digest(frame: Any) -> str:
    """A digest of a frame's content (values, index, column names and dtypes), independent
    of how it would be serialized."""
    import pandas as pd

    sha = hashlib.sha256()
    sha.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    sha.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return sha.hexdigest()


def read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    raise InvalidInput(f"cannot read {path.name}: use a .parquet or .csv file", field="data")


def describe_dataset(data: Any, scratch: Path) -> DescribedDataset:
    import pandas as pd

    source = ""
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise NotFound(f"no file at {path}", field="data")
        source = str(path.resolve())
        data = read_table(path)
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput("data must be a pandas DataFrame or a path to a file", field="data")
    frame = data
    data_file = scratch / "data.parquet"
    frame.to_parquet(data_file)
    return DescribedDataset(
        digest=frame_digest(frame),
        columns=[ColumnSchema(name=str(c), dtype=str(t)) for c, t in frame.dtypes.items()],
        row_count=len(frame),
        profile=_profile(frame),
        data_file=data_file,
        format="parquet",
        source=source,
    )


def _profile(frame: Any) -> dict[str, Any]:
    from heron._profiles import DatasetProfile

    return DatasetProfile.from_frame(frame).model_dump(mode="json")
