"""``json_batch``: the JSON text a batch goes to PostgreSQL as (``insert_rows``, ``upsert``, ``one_of``)."""

import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recovery.db import json_batch, json_document
from recovery.identity.normalise import IdentityKind


def test_rows_keep_their_values_with_datetimes_in_utc_and_uuids_as_text():
    warsaw = dt.timezone(dt.timedelta(hours=1))
    public_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    rows = [
        {
            "at": dt.datetime(2025, 3, 12, 3, 16, 20, 5, tzinfo=warsaw),
            "id": public_id,
            "kind": IdentityKind.EMAIL,
            "name": 'Łukasz "Ż" ∑',
            "n": 2**62,
            "none": None,
            "flag": True,
        }
    ]
    assert json.loads(json_batch(rows)) == [
        {
            "at": "2025-03-12T02:16:20.000005+00:00",
            "id": "12345678-1234-5678-1234-567812345678",
            "kind": "email",
            "name": 'Łukasz "Ż" ∑',
            "n": 2**62,
            "none": None,
            "flag": True,
        }
    ]


def test_a_naive_datetime_is_refused_as_utc_columns_refuse_it():
    with pytest.raises(TypeError):
        json_batch([{"at": dt.datetime(2025, 1, 1)}])


def test_values_json_cannot_carry_are_refused():
    with pytest.raises(TypeError):
        json_batch([{"amount": {1, 2}}])


# -- json_document: a JSON column's value (the engines' json_serializer) --------------------------

documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text() | st.integers(-1000, 1000), children, max_size=4)
    ),
    max_leaves=12,
)


@given(documents)
def test_a_document_reads_back_as_json_dumps_writes_it(value):
    assert json.loads(json_document(value)) == json.loads(json.dumps(value))


def test_a_document_refuses_a_datetime_and_what_is_not_json():
    for value in ({"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, {1, 2}, {"o": object()}):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            json_document(value)
