"""The building blocks of the edge models: Avro number types, constrained strings,
enum symbols, and `AvroModel`, the base every model derives from.

`AvroType` marks which Avro number type an `int` or `float` field has; `schemas.model_drift`
reads the marks to compare a model with its `.avsc` file.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class AvroType:
    """Marks which Avro number type an `int` or `float` field has (int/long, float/double)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"AvroType({self.name!r})"


AvroInt = Annotated[int, AvroType("int"), Field(ge=INT_MIN, le=INT_MAX)]
AvroLong = Annotated[int, AvroType("long"), Field(ge=LONG_MIN, le=LONG_MAX)]
EpochMs = Annotated[int, AvroType("long"), Field(ge=0, le=LONG_MAX)]
Count = Annotated[int, AvroType("int"), Field(ge=0, le=INT_MAX)]
AvroFloat = Annotated[float, AvroType("float"), Field(allow_inf_nan=False)]
AvroDouble = Annotated[float, AvroType("double"), Field(allow_inf_nan=False)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Geohash = Annotated[str, StringConstraints(pattern=r"^[0-9b-hjkmnp-z]{1,6}$")]

AppState = Literal["FOREGROUND", "BACKGROUND"]
NetworkStatus = Literal[
    "OFFLINE", "WIFI", "CELL_2G", "CELL_3G", "CELL_4G", "CELL_5G", "ETHERNET", "UNKNOWN"
]
ReleasedNetworkStatus = Literal[
    "OFFLINE", "WIFI", "CELL_2G", "CELL_3G", "CELL_4G", "CELL_5G", "ETHERNET", "UNKNOWN", "CELL"
]
LocationSource = Literal["GPS", "WIFI", "CELL", "UNKNOWN"]
LogType = Literal["APP_OPEN", "PAGE_VIEW", "USAGE", "CRASH", "SYSTEM"]
TimeGranularity = Literal["HOUR", "SIX_HOURS", "DAY"]
AccountStatus = Literal["ACTIVE", "CANCELLED"]


class AvroModel(BaseModel):
    """Base of every model: unknown fields are rejected; `to_avro()` gives the codec's dict."""

    model_config = ConfigDict(extra="forbid")
    schema_name: ClassVar[str]

    def to_avro(self) -> dict[str, Any]:
        """The record as the plain dict `schemas.codec.Codec.encode` takes."""
        return self.model_dump()
