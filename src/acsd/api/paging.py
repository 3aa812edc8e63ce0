"""The query parameters of the API's lists: how many items a page holds, where it starts."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from acsd.models import IdFilter

#: the largest list offset: SQLite's (and PostgreSQL's) 64-bit signed integer
MAX_OFFSET = 2**63 - 1

#: the ``after`` parameter of the lists ordered by id. An offset moves when records before
#: it are deleted (a walk skips one) or made by another worker in the same second (a walk
#: repeats one); the id of the last record seen stays where it is.
AFTER_DOC = (
    "Only the records whose _id comes after this one (give the previous page's last _id):"
    " a walk that pages this way sees each record that exists throughout exactly once,"
    " while others are created and deleted. total still counts every match."
)

_WHOLE = re.compile(r"-?[0-9]+")


def _whole_number(value: Any) -> Any:
    # A query string's number as people and scripts write it: Python's int() would also
    # take "1_0", "+5", " 1" and non-ASCII digits, each a typo or a script's bug.
    if isinstance(value, str) and _WHOLE.fullmatch(value) is None:
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, written in digits"
        )
    return value


#: a whole number in a query string: digits only (a sign for a negative one)
QueryInt = Annotated[int, BeforeValidator(_whole_number)]


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: QueryInt = Field(100, ge=1, le=1000)
    offset: QueryInt = Field(0, ge=0, le=MAX_OFFSET)


class IdPageQuery(PageQuery):
    """A list ordered by id, which can also be walked from an id on."""

    after: IdFilter | None = Field(None, description=AFTER_DOC)
