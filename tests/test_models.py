"""Job ids: unique, sanitized, safe in key names and SCAN patterns."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.models import NAME_MAX, Job, Result, make_job_id, sanitize_name

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def test_no_collision_in_100k_ids_from_the_same_name():
    ids = {make_job_id("s1", "notes/same name.md") for _ in range(100_000)}
    assert len(ids) == 100_000


@given(st.text(max_size=500))
def test_sanitized_names_are_safe_and_bounded(name):
    clean = sanitize_name(name)
    assert SAFE.match(clean)
    assert 1 <= len(clean) <= NAME_MAX
    job_id = make_job_id("sess{1}: x", name)
    assert not set(job_id) & set(":{}* \t\n")


def test_a_path_stays_readable():
    assert sanitize_name("lang/python basics.md") == "lang_python_basics.md"
    assert make_job_id("s1", "a/b.md").startswith("s1-a_b.md-")


def test_job_and_result_round_trip_as_json():
    job = Job(id="x", session="s", result_key="k", handler="echo", payload={"a": [1, 2]})
    assert Job.from_json(job.to_json()) == job
    assert b"pickle" not in job.to_json()
    res = Result(job_id="x", outcome="ok", value=3)
    assert Result.from_json(res.to_json()).value == 3
