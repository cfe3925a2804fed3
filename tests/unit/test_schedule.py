"""The schedule's decision over fakes: a tick starts a run only when the labelled data changed since the last
successful run (control_plane.new_data), unless the config turns that off; a check that cannot run starts the run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from control_plane import new_data, schedule
from control_plane.models import SUBJECT_PATTERN
from control_plane.pipeline_config import GivenConfig
from pipeline_def.config import PipelineConfig, ScheduleSettings
from pipeline_def.definition import build_definition
from tests.unit.fakes import CONFIG_TEXT, STORE, FakeAudit, FakeListing, FakePipelines

TICK = schedule.ScheduledTick(time=datetime(2026, 12, 5, 2, tzinfo=UTC))
# the last successful run read its data as of this time
AS_OF = datetime(2026, 12, 4, 2, tzinfo=UTC)


def config(*, only_when_data_changed: bool = True) -> GivenConfig:
    text = CONFIG_TEXT.replace(
        "only_when_data_changed: true", f"only_when_data_changed: {str(only_when_data_changed).lower()}"
    )
    assert ("only_when_data_changed: true" in text) is only_when_data_changed
    return GivenConfig("/scratch-detector/pipeline-config", text)


def succeeded(pipelines: FakePipelines, run_id: str = "aaaaaaaaaaaa", data_as_of: str | None = None) -> None:
    """A successful run, newer than those already there; its DataAsOf is `data_as_of` (None: it has none)."""
    pipelines.add(run_id, "Succeeded", minutes_ago=60)
    if data_as_of is not None:
        pipelines.run_parameters[run_id] = {"NumEpochs": "100", "DataAsOf": data_as_of}


def tick(
    pipelines: FakePipelines, listing: FakeListing, audit: FakeAudit | None = None, **settings: bool
) -> schedule.ScheduleOutcome:
    return schedule.scheduled_start(
        TICK, pipelines, audit or FakeAudit(), skip_if_running=True, config=config(**settings), listing=listing
    )


def test_with_no_successful_run_yet_a_tick_starts_one() -> None:
    # Given runs that failed or stopped, none that succeeded
    pipelines, listing, audit = FakePipelines(), FakeListing(), FakeAudit()
    pipelines.add("bbbbbbbbbbbb", "Failed", minutes_ago=30)
    pipelines.add("cccccccccccc", "Stopped", minutes_ago=20)

    outcome = tick(pipelines, listing, audit)

    # Then a run starts, and the start's audit entry says why, without listing the store
    assert (outcome.started, outcome.data_check) == (True, "no-successful-run")
    assert len(pipelines.started) == 1
    assert listing.asked == []
    assert audit.entries[0].details["data_check"] == "no successful run among the newest 1000"


def test_an_object_written_after_the_last_successful_runs_data_time_starts_a_run() -> None:
    # Given the last successful run's DataAsOf, and an object the store wrote half an hour after it
    pipelines, audit = FakePipelines(), FakeAudit()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")
    listing = FakeListing(
        {f"{STORE}/old.parquet": AS_OF - timedelta(days=1), f"{STORE}/new.parquet": AS_OF + timedelta(minutes=30)}
    )

    outcome = tick(pipelines, listing, audit)

    # Then a run starts; the store was asked from the run's DataAsOf; the start names the object it found
    assert (outcome.started, outcome.data_check) == (True, "changed")
    assert listing.asked == [(STORE, AS_OF)]
    [entry] = audit.entries
    assert entry.subject.startswith("run#")
    assert (
        "1 offline-store object(s) written since run aaaaaaaaaaaa's data time 2026-12-04T02:00:00+00:00"
        in (entry.details["data_check"])
    )
    assert f"{STORE}/new.parquet" in entry.details["data_check"]


def test_an_unchanged_store_starts_nothing_and_records_why_once() -> None:
    # Given the last successful run, and a store written only before its DataAsOf
    pipelines, audit = FakePipelines(), FakeAudit()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00+00:00")
    pipelines.add("dddddddddddd", "Failed", minutes_ago=10)  # newer, but not successful
    listing = FakeListing({f"{STORE}/old.parquet": AS_OF - timedelta(seconds=1)})

    # When the tick is delivered twice
    outcome = tick(pipelines, listing, audit)
    again = tick(pipelines, listing, audit)

    # Then nothing starts; why is in the audit trail once, under the schedule's subject, at the scheduled time
    assert (outcome.started, outcome.data_check) == (False, "unchanged")
    assert again == outcome
    assert pipelines.started == []
    [entry] = audit.entries
    assert (entry.subject, entry.action, entry.source, entry.at) == (
        "schedule#scratch-detector",
        "skip",
        "schedule",
        TICK.time,
    )
    assert entry.details["last_successful_run"] == "aaaaaaaaaaaa"
    assert entry.details["offline_store"] == STORE
    assert entry.details["objects_examined"] == "1"
    assert entry.details["reason"] == outcome.reason
    assert "nothing written to the offline store since run aaaaaaaaaaaa's data time 2026-12-04T02:00:00" in (
        outcome.reason
    )


def test_without_a_data_as_of_the_runs_start_is_its_data_time() -> None:
    # Given a successful run from before DataAsOf (it has none): it started 2026-11-26 at 23:00
    pipelines = FakePipelines()
    succeeded(pipelines)
    started = datetime(2026, 11, 25, 23, tzinfo=UTC)
    listing = FakeListing({f"{STORE}/a.parquet": started - timedelta(minutes=5)})

    outcome = tick(pipelines, listing)

    assert (outcome.started, outcome.data_check) == (False, "unchanged")
    assert listing.asked == [(STORE, started)]
    assert "(its start: it has no DataAsOf)" in outcome.reason


def test_an_object_of_the_data_times_own_second_counts_as_new() -> None:
    # S3 lists LastModified in whole seconds: an object written 0.4 s after the data time is listed at its second
    pipelines = FakePipelines()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00.400000Z")
    listing = FakeListing({f"{STORE}/a.parquet": AS_OF})

    outcome = tick(pipelines, listing)

    assert (outcome.started, outcome.data_check) == (True, "changed")
    assert listing.asked == [(STORE, AS_OF)]


def test_an_offline_store_that_moved_since_the_last_successful_run_is_a_change() -> None:
    pipelines = FakePipelines()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")
    pipelines.run_stores["aaaaaaaaaaaa"] = "s3://bucket/feature-store/old-group/data"

    outcome = tick(pipelines, FakeListing())

    assert (outcome.started, outcome.data_check) == (True, "changed")
    assert "the offline store moved since run aaaaaaaaaaaa" in outcome.reason


def test_with_the_setting_off_every_tick_starts_a_run() -> None:
    # Given an unchanged store, and schedule.only_when_data_changed false
    pipelines, audit = FakePipelines(), FakeAudit()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")
    listing = FakeListing({f"{STORE}/old.parquet": AS_OF - timedelta(days=1)})

    outcome = tick(pipelines, listing, audit, only_when_data_changed=False)

    assert (outcome.started, outcome.data_check) == (True, "off")
    assert listing.asked == []
    assert "schedule.only_when_data_changed is false" in audit.entries[0].details["data_check"]


def refused() -> ClientError:
    return ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized: s3:ListBucket"}}, "ListObjectsV2")


@pytest.mark.parametrize(
    ("breaks", "says"),
    [
        (lambda p, listing: setattr(listing, "error", refused()), "AccessDenied"),
        (
            lambda p, listing: p.run_parameters.update({"aaaaaaaaaaaa": {"DataAsOf": "yesterday"}}),
            "run aaaaaaaaaaaa's DataAsOf 'yesterday' is not an ISO 8601 time with an offset",
        ),
        (lambda p, listing: setattr(p, "store", None), "the definition has no Preprocess step"),
    ],
    ids=["listing refused", "DataAsOf malformed", "no offline-store input"],
)
def test_a_check_that_cannot_run_starts_the_run_and_says_why(
    breaks: Callable[[FakePipelines, FakeListing], object], says: str
) -> None:
    # Given an unchanged store whose check breaks
    pipelines, audit = FakePipelines(), FakeAudit()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")
    listing = FakeListing({f"{STORE}/old.parquet": AS_OF - timedelta(days=1)})
    breaks(pipelines, listing)

    outcome = tick(pipelines, listing, audit)

    # Then the run starts (fail open), and its start's audit entry says the check could not tell, and why
    assert (outcome.started, outcome.data_check) == (True, "unknown")
    assert audit.entries[0].details["data_check"].startswith("could not tell whether the data changed: ")
    assert says in audit.entries[0].details["data_check"]


def test_a_config_that_cannot_be_read_starts_the_run_and_says_why() -> None:
    pipelines, audit = FakePipelines(), FakeAudit()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")

    outcome = schedule.scheduled_start(
        TICK,
        pipelines,
        audit,
        skip_if_running=True,
        config=GivenConfig("/scratch-detector/pipeline-config", "schedule: [not, a, mapping]"),
        listing=FakeListing(),
    )

    assert (outcome.started, outcome.data_check) == (True, "unknown")
    assert "could not read the config's schedule settings" in audit.entries[0].details["data_check"]


def test_a_running_run_skips_the_tick_and_records_it() -> None:
    pipelines, audit, listing = FakePipelines(), FakeAudit(), FakeListing()
    pipelines.add("abcdef123456", "Executing")

    outcome = tick(pipelines, listing, audit)

    assert (outcome.started, outcome.data_check, outcome.reason) == (False, None, "run abcdef123456 is still executing")
    assert listing.asked == []
    assert [(e.subject, e.details["reason"]) for e in audit.entries] == [
        ("schedule#scratch-detector", "run abcdef123456 is still executing")
    ]


def test_the_check_looks_past_a_page_of_runs_for_the_last_successful_one() -> None:
    # Given (pages of three) four failed runs newer than the successful one
    pipelines = FakePipelines()
    succeeded(pipelines, data_as_of="2026-12-04T02:00:00Z")
    for n in range(4):
        pipelines.add(f"fffffffffff{n}", "Failed")

    last = new_data.last_successful_run(pipelines)

    assert last is not None
    assert last["PipelineExecutionArn"].endswith("/aaaaaaaaaaaa")


def test_the_check_finds_the_offline_store_where_the_built_definition_reads_it() -> None:
    # the other side of pipeline_def.names' PREPROCESS_STEP and OFFLINE_STORE_INPUT: the definition the config builds
    config = PipelineConfig.from_yaml(CONFIG_TEXT)

    found = new_data.offline_store(json.loads(build_definition(config)))

    assert found == config.feature_group.offline_store_uri


def test_the_setting_defaults_to_true_and_is_documented_in_the_repositorys_config() -> None:
    assert ScheduleSettings().only_when_data_changed is True
    assert PipelineConfig.from_yaml(CONFIG_TEXT).schedule.only_when_data_changed is True
    without = CONFIG_TEXT.replace("schedule:\n  only_when_data_changed: true\n", "")
    assert without != CONFIG_TEXT
    assert PipelineConfig.from_yaml(without).schedule == ScheduleSettings()


def test_the_schedules_subject_is_one_get_audit_and_the_command_line_take() -> None:
    assert re.fullmatch(SUBJECT_PATTERN, schedule.subject("scratch-detector-dev"))
    assert re.fullmatch(SUBJECT_PATTERN, schedule.subject("a" * 256))
    assert not re.fullmatch(SUBJECT_PATTERN, schedule.subject("scratch_detector"))
