"""The run folder read and written directly: checkpoint files (length, checksum, weights only),
log lines that are not records, the last record across read blocks, the run lock, states
without a process, temporary files, failed writes, and listing a runs folder with bad
folders in it (issue 13)."""

from __future__ import annotations

import errno
import io
import json
import os
import random
import subprocess
import sys

import pytest
import torch

from nas_engine import checkpoints, store
from nas_engine.checkpoints import DamagedCheckpoint, RefusedCheckpoint
from nas_engine.config import SearchConfig
from nas_engine.runner import RunRegistry
from nas_engine.search import Search
from nas_engine.store import Recorder, RunFolder, RunFolderError, RunInUse, list_runs
from tests.test_runner import tiny


class Payload:
    """Pickles as a call of os.system: what a crafted checkpoint would run on load."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def state(epoch: int = 1, step: int = 4, **more) -> dict:
    """The fields every checkpoint holds (the job's own fields are free)."""
    return {"epoch": epoch, "step_count": step, "records": 0, "config": {}, **more}


def record(step: int, kind: str = "step", epoch: int = 0, **more) -> dict:
    return {"kind": kind, "step": step, "epoch": epoch, **more}


def test_a_checkpoint_file_carries_its_length_and_checksum(tmp_path) -> None:
    data = checkpoints.encode(state(t=torch.arange(5.0)))
    path = tmp_path / "epoch_0001.pt"
    assert checkpoints.decode(data, path)["t"].tolist() == [0, 1, 2, 3, 4]
    assert torch.load(io.BytesIO(data), weights_only=True)["epoch"] == 1  # still torch's format
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    damaged = {
        "cut short": (data[: len(data) // 2], "damaged: cut short (its end is missing)"),
        "trailer cut": (data[:-10], "damaged: cut short (its end is missing)"),
        "flipped byte": (bytes(flipped), "damaged: its checksum does not match"),
        "empty": (b"", "damaged: empty"),
        "random": (random.Random(0).randbytes(4096), "damaged: not a checkpoint"),
        "padded": (data[:-checkpoints.TRAILER.size] + b"x" + data[-checkpoints.TRAILER.size:],
                   "bytes where its trailer says"),
    }
    for name, (bad, reason) in damaged.items():
        with pytest.raises(DamagedCheckpoint) as caught:
            checkpoints.decode(bad, path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and reason in message, name
        assert "\n" not in message, name


def test_a_crafted_checkpoint_is_refused_and_nothing_in_it_runs(tmp_path) -> None:
    marker = tmp_path / "ran"
    crafted = checkpoints.encode(state(payload=Payload(marker)))  # a valid trailer, even
    buffer = io.BytesIO()
    torch.save(state(payload=Payload(marker)), buffer)  # and without one
    for data in (crafted, buffer.getvalue()):
        with pytest.raises(RefusedCheckpoint, match=r"latest\.pt: refused: it would load "
                           r"posix\.system, which no checkpoint holds"):
            checkpoints.decode(data, tmp_path / "latest.pt")
    assert not marker.exists()
    recorder = Recorder.create(tmp_path / "runs", tiny())
    recorder.save_checkpoint(state(1, 4), 1)
    (recorder.path / "checkpoints" / "latest.pt").write_bytes(crafted)
    with pytest.raises(RefusedCheckpoint):  # not passed over for the good epoch 1 either
        recorder.newest_checkpoint()
    assert not marker.exists()


@pytest.mark.parametrize("changes", [
    {},
    {"strategy.order": "second"},
    {"strategy.name": "pcdarts", "strategy.pc_warmup_epochs": 0},
    {"strategy.name": "nasp"},
    {"strategy.name": "gdas"},
    {"strategy.name": "fair_darts"},
    {"diagnostics.hessian_every": 1, "regularizers.entropy.weight": 0.1,
     "mitigations.skip_dropout": 0.1, "mitigations.sdarts_epsilon": 0.1,
     "mitigations.aux_skip": True},
], ids=["darts", "second-order", "pcdarts", "nasp", "gdas", "fair_darts", "components"])
def test_every_state_a_search_saves_loads_with_weights_only(tmp_path, changes) -> None:
    """torch's default allow-list covers everything our jobs put in a checkpoint."""
    config = tiny(epochs=1, **{"data.subset": 120, **changes})
    search = Search(config)
    search.run()
    saved = search.state_dict()
    loaded = checkpoints.decode(checkpoints.encode(saved), tmp_path / "epoch_0001.pt")
    assert loaded.keys() == saved.keys()
    Search(config).load_state_dict(loaded)


def test_lines_that_are_not_records_are_skipped_but_counted(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    recorder.append_records([record(1), record(2)])  # one write
    junk = [b"42", b"{}", b"[1]", b'"text"', b'{"kind": "step"}', b'{"kind": 3, "step": 1, '
            b'"epoch": 0}', b'{"kind":"step","step":true,"epoch":0}', b'{"kind": "st', b"\xff"]
    with open(recorder.path / "metrics.jsonl", "ab") as f:
        f.write(b"".join(line + b"\n" for line in junk))
    recorder.append_record(record(3, "epoch", 1))
    with open(recorder.path / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "step", "step": 4, "epo')  # cut off by a crash: not a line yet
    folder = RunFolder(recorder.path)
    assert folder.read_records() == [record(1), record(2), record(3, "epoch", 1)]
    assert folder.last_record() == record(3, "epoch", 1)
    recorder.close()
    assert Recorder(recorder.path).record_count == 2 + len(junk) + 1  # what a checkpoint keeps


def test_the_last_record_is_found_across_a_64_kib_block(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    pad = "x" * (70 * 1024)  # each line longer than one block read from the end
    records = [record(4, "epoch", 1, pad=pad), record(5, pad=pad), record(6, pad=pad)]
    for r in records:
        recorder.append_record(r)
    folder = RunFolder(recorder.path)
    assert folder.last_record() == records[-1]
    assert folder.last_record(("epoch",)) == records[0]  # two block boundaries back
    with open(recorder.path / "metrics.jsonl", "ab") as f:
        f.write(b"42\n" + b'{"kind": "step", "step": 7, "epoch": 1, "pad": "' + b"y" * 70000)
    assert folder.last_record() == records[-1]  # a bare number, a cut-off line: skipped
    assert folder.last_record(("live",)) is None


def test_the_lock_is_exclusive_names_its_holder_and_dies_with_it(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    path = recorder.path
    with pytest.raises(RunInUse, match=rf"run\.lock: the run is in use by process "
                       rf"{os.getpid()} since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d; wait"):
        Recorder(path)  # a second writer in this very process, too
    assert RunFolder(path).lock_holder().startswith(f"process {os.getpid()} since ")
    recorder.close()
    assert RunFolder(path).lock_holder() is None
    Recorder(path).close()
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; from nas_engine.store import Recorder; "
         "r = Recorder(sys.argv[1]); r.write_status('running'); print(flush=True); "
         "sys.stdin.read()", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        other.stdout.readline()
        with pytest.raises(RunInUse, match=f"in use by process {other.pid} since"):
            Recorder(path)
        assert RunFolder(path).effective_state() == "running"
    finally:
        other.kill()
        other.wait()
    assert RunFolder(path).effective_state() == "interrupted"  # the OS dropped its lock
    Recorder(path).close()


def test_a_run_without_status_json_is_not_created(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    recorder.close()
    (recorder.path / "status.json").unlink()
    folder = RunFolder(recorder.path)
    assert folder.effective_state() == "interrupted"  # created, but its writer is gone
    recorder = Recorder(recorder.path)
    recorder.append_record(record(1))
    recorder.save_checkpoint(state(1, 4), 1)
    assert folder.recorded_state() == "interrupted" and folder.read_status() == {
        "state": "interrupted"}


@pytest.mark.parametrize("text, reason", [
    ("{", "is not valid JSON (Expecting property name"),
    ("[1]", "must be a JSON object; got [1]"),
    ('{"state": "runing"}', "state must be one of created, running, paused, finished, "
                            "stopped, failed, interrupted; got 'runing'"),
    ('{"state": "failed", "message": 3}', "message must be text; got 3"),
])
def test_a_bad_status_json_is_named(tmp_path, text, reason) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    (recorder.path / "status.json").write_text(text)
    with pytest.raises(RunFolderError) as caught:
        RunFolder(recorder.path).effective_state()
    assert str(caught.value).startswith(f"{recorder.path / 'status.json'}: {reason}")
    assert "\n" not in str(caught.value)


def test_temporary_files_of_a_crash_go_when_the_folder_is_next_opened(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    recorder.save_checkpoint(state(1, 4), 1)
    recorder.close()
    left = [recorder.path / ".status.json.tmp4242",
            recorder.path / "checkpoints" / ".epoch_0002.pt.tmp4242"]
    for path in left:
        path.write_bytes(b"x" * 1000)
    (recorder.path / "notes.tmp").write_text("a person's file")
    Recorder(recorder.path).close()
    assert not any(path.exists() for path in left)
    assert (recorder.path / "notes.tmp").exists()


def full_disk(monkeypatch) -> None:
    """From now on every write takes part of its bytes, then fails as a full disk does."""
    real = store._write_all

    def write_all(f, data) -> None:
        real(f, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store, "_write_all", write_all)


def test_a_failed_write_leaves_neither_a_temporary_file_nor_half_a_line(tmp_path,
                                                                        monkeypatch) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    recorder.append_record(record(1))
    log = recorder.path / "metrics.jsonl"
    before = log.read_bytes()
    full_disk(monkeypatch)
    for write, name in [(lambda: recorder.save_checkpoint(state(1, 4), 1),
                         "checkpoints/epoch_0001.pt"),
                        (lambda: recorder.write_status("running"), "status.json"),
                        (lambda: recorder.append_record(record(2)), "metrics.jsonl")]:
        with pytest.raises(OSError) as caught:
            write()
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(recorder.path / name)
    assert log.read_bytes() == before and recorder.record_count == 1
    assert not [p for p in recorder.path.rglob("*") if ".tmp" in p.name]
    assert RunFolder(recorder.path).read_status()["state"] == "created"


def test_one_bad_folder_hides_no_other_run(tmp_path) -> None:
    runs = tmp_path / "runs"
    good = Recorder.create(runs, tiny(), label="good")
    good.append_record(record(1, skip_count=2))
    good.append_record(record(4, "epoch", 1, skip_count=3))
    good.write_status("finished")
    bare = Recorder.create(runs, tiny(), label="bare-number")
    bare.append_record(record(4, "epoch", 1, skip_count=1))
    bare.write_status("stopped")
    with open(bare.path / "metrics.jsonl", "ab") as f:
        f.write(b"42\n")  # skipped like any line that is not a record
    bad = {}
    for label, name, text in [("json", "config.json", '{"space": '),
                              ("epochs", "config.json", '{"space": "nb201", "epochs": -1}'),
                              ("status", "status.json", '{"state": "runing"}')]:
        recorder = Recorder.create(runs, tiny(), label=label)
        (recorder.path / name).write_text(text)
        bad[label] = recorder.run_id
    rows = {row.run_id: row for row in RunRegistry(runs).list()}
    assert len(rows) == len(list_runs(runs)) == 5
    assert (rows[good.run_id].state, rows[good.run_id].epoch, rows[good.run_id].skip_count,
            rows[good.run_id].problem) == ("finished", 1, 3, None)
    assert (rows[bare.run_id].state, rows[bare.run_id].skip_count,
            rows[bare.run_id].problem) == ("stopped", 1, None)
    assert rows[bad["json"]].problem.startswith("unreadable: config.json: is not valid JSON (")
    assert rows[bad["epochs"]].problem == ("unreadable: config.json: epochs must be an "
                                           "integer in [1, 10000]; got -1")
    assert rows[bad["status"]].problem == (
        "unreadable: status.json: state must be one of created, running, paused, finished, "
        "stopped, failed, interrupted; got 'runing'")
    row = rows[bad["json"]]
    assert (row.state, row.space, row.epoch) == (None, None, None)
    assert row.started == rows[good.run_id].started  # still placed in time


def test_the_runs_root_is_checked_before_any_work(tmp_path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for path, reason in [(afile, "is a file, not a folder"),
                         (afile / "runs", "is under a file, not a folder")]:
        with pytest.raises(ValueError, match=f"^{path} {reason}$"):
            store.check_runs_dir(path)
    assert store.check_runs_dir(tmp_path / "new" / "runs").is_dir()
    assert list((tmp_path / "new" / "runs").iterdir()) == []  # the probe is gone


def test_config_json_errors_name_the_file_and_setting(tmp_path) -> None:
    recorder = Recorder.create(tmp_path, tiny())
    path = recorder.path / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "ops": ["bogus"]}))
    with pytest.raises(RunFolderError, match=r"config\.json: ops must be ops of the nb201 "
                       r"space"):
        RunFolder(recorder.path).read_config()
    path.write_bytes(b"\xff")
    with pytest.raises(RunFolderError, match=r"config\.json: is not valid JSON"):
        RunFolder(recorder.path).read_config()
    assert SearchConfig.from_dict(config)  # the original was fine
