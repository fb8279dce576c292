"""Fault tests of tlwidgets.weights (issue 11 items 8, 12 and 15): files for another
architecture, files that are no weights at all, paths that are not regular files, a hub that
accepts connections and never answers, and absurd class counts. Every file is made here; nothing
touches the network (the hub is a local server on 127.0.0.1 or nowhere)."""

from __future__ import annotations

import io
import os
import pickle
import random
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

import tlwidgets as tlw
from tlwidgets import _offline

torch.set_num_threads(1)

SMALL = "mobilenetv3_small_050"


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """No registered files and empty caches, so only what a test puts there is offline."""
    monkeypatch.setattr(_offline, "_REGISTERED", {})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-empty"))


def _call_in_thread(fn, bound_s: float):
    """Run ``fn`` in a daemon thread; (finished, result or exception). A call that blocks past
    ``bound_s`` (a hang, not a slow call: every call here takes well under a second when it
    works) is reported as unfinished instead of blocking the test run."""
    out: dict = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            out["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(bound_s)
    return not thread.is_alive(), out


# ----------------------------------------------------------------- a file for another architecture


@pytest.fixture(scope="module")
def resnet34_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("arch") / "resnet34.safetensors"
    safetensors.torch.save_file(timm.create_model("resnet34").state_dict(), str(path))
    return path


def test_create_model_refuses_a_file_for_another_architecture(resnet34_file):
    # every resnet18 tensor has a namesake of the same shape in resnet34's file, so a match by
    # name "succeeds" while 96 of the file's tensors (layer1.2, layer2.2, ...) go nowhere
    with pytest.raises(tlw.WeightsMismatchError) as err:
        tlw.create_model("resnet18", 2, weights=resnet34_file)
    text = str(err.value)
    assert "resnet18" in text and "resnet34" in text, text
    assert "layer1.2." in text  # an example of a tensor with no place in resnet18
    assert "tlw.load_weights" in text  # the way to a deliberate partial load


def test_load_weights_says_the_file_is_for_another_architecture(resnet34_file):
    model = tlw.create_model("resnet18", 2, weights="none")
    with pytest.warns(UserWarning, match="resnet34") as caught:
        report = tlw.load_weights(model, resnet34_file)
    assert len(report.matched) == 120 and set(report.skipped) == {"fc.weight", "fc.bias"}
    assert report.warnings and "resnet34" in report.warnings[0]
    assert "resnet34" in str(report)
    assert str(caught[0].message) == report.warnings[0]


def test_a_few_extra_tensors_or_bn_counters_are_no_other_architecture(tmp_path):
    torch.manual_seed(0)
    sd = timm.create_model("resnet18").state_dict()
    # an auxiliary head's two tensors: a normal training checkpoint, not another architecture
    extra = dict(sd, **{"aux.fc.weight": torch.zeros(3, 512), "aux.fc.bias": torch.zeros(3)})
    path = tmp_path / "aux.safetensors"
    safetensors.torch.save_file(extra, str(path))
    model = tlw.create_model("resnet18", 1000, weights=path)
    assert set(model.tlw_load_report.unexpected) == {"aux.fc.weight", "aux.fc.bias"}
    assert model.tlw_load_report.warnings == []
    # BatchNorm counters the model lacks (track_running_stats off) are no reason either
    counters_only = tlw.create_model("resnet18", 1000, weights="none")
    for m in counters_only.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            del m.num_batches_tracked
            m.register_buffer("num_batches_tracked", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = tlw.load_weights(counters_only, sd)
    assert len(report.unexpected) == 20 and report.warnings == []


# ----------------------------------------------------------------- files that are no weights


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", ["model.pth", "model.bin", "weights"])
def test_random_bytes_are_not_a_weights_file(tmp_path, seed, name):
    path = tmp_path / name
    path.write_bytes(random.Random(seed).randbytes(4096))
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.WeightsError) as err:
        tlw.load_weights(model, path)
    assert not isinstance(err.value, tlw.UnsafeWeightsError)
    assert "not a weights file" in str(err.value)
    assert "run code" not in str(err.value)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_code_running_pickle_of_any_protocol_is_still_refused_as_unsafe(tmp_path, protocol):
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps({"w": torch.zeros(2), "x": _RunsCode()}, protocol=protocol))
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.UnsafeWeightsError, match="system"):
        tlw.load_weights(model, path)


@pytest.mark.parametrize("name", ["empty.pth", "empty.bin", "empty.safetensors"])
def test_an_empty_file_is_reported_not_crashed_on(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.WeightsError, match="empty") as err:
        tlw.load_weights(model, path)
    assert "0 bytes" in str(err.value)
    with pytest.raises(tlw.WeightsError, match="empty"):
        tlw.create_model(SMALL, 2, weights=path)


@pytest.mark.parametrize("zipfile_format", [True, False], ids=["zip", "legacy"])
def test_a_truncated_torch_file_is_called_incomplete(tmp_path, zipfile_format):
    buf = io.BytesIO()
    sd = timm.create_model(SMALL).state_dict()
    torch.save(sd, buf, _use_new_zipfile_serialization=zipfile_format)
    path = tmp_path / "cut.pth"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.WeightsError) as err:
        tlw.load_weights(model, path)
    assert not isinstance(err.value, tlw.UnsafeWeightsError)
    assert "incomplete" in str(err.value) or "cut short" in str(err.value), str(err.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_at_once_never_read(tmp_path):
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    model = tlw.create_model(SMALL, 2, weights="none")
    calls = {
        "load_weights": lambda: tlw.load_weights(model, fifo),
        "create_model": lambda: tlw.create_model(SMALL, 2, weights=fifo),
        "register_weights": lambda: tlw.register_weights(SMALL, fifo),
    }
    try:
        for what, call in calls.items():
            finished, out = _call_in_thread(call, bound_s=20)
            assert finished, f"{what} blocked reading a named pipe"
            assert isinstance(out.get("error"), tlw.ConfigError), (what, out)
            assert "not a regular file" in str(out["error"]), str(out["error"])
    finally:
        # unblock a reader left waiting by a failed run, so no thread hangs on
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


# ----------------------------------------------------------------- a hub that never answers


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0), backlog=32)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


_SILENT_HUB_SCRIPT = """
import time, tlwidgets as tlw
start = time.monotonic()
try:
    tlw.create_model("mobilenetv3_small_050", 2)
except tlw.WeightsUnavailableError as err:
    print("SECONDS", round(time.monotonic() - start, 1))
    print(err)
"""


def test_a_hub_that_accepts_but_never_answers_fails_within_seconds(silent_server, tmp_path):
    import subprocess
    import sys

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")
    }
    env |= {
        "HF_ENDPOINT": f"http://127.0.0.1:{silent_server}",  # read by huggingface_hub at import
        "HF_HUB_CACHE": str(tmp_path / "hf-empty"),
        "TORCH_HOME": str(tmp_path / "torch-empty"),
        "OMP_NUM_THREADS": "1",
    }
    started = time.monotonic()
    try:
        # the bound catches a hang (before the fix: retries with back-off for minutes); a
        # working run is the interpreter's imports plus the few seconds of the probe
        done = subprocess.run(
            [sys.executable, "-c", _SILENT_HUB_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        waited = time.monotonic() - started
        pytest.fail(f"create_model still waiting on a silent hub after {waited:.0f} s")
    out = done.stdout
    assert done.returncode == 0 and "SECONDS" in out, (out, done.stderr[-2000:])
    assert f"127.0.0.1:{silent_server} accepted a connection but did not answer" in out, out
    assert "Ways out" in out and "weights='none'" in out, out
    seconds = float(out.split("SECONDS", 1)[1].split()[0])
    print(f"create_model on a silent hub failed after {seconds} s")


def test_the_probe_tells_a_silent_host_from_one_that_answers(silent_server):
    from tlwidgets._hub_probe import no_answer

    answering = socket.create_server(("127.0.0.1", 0))

    def answer_once():
        conn, _ = answering.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        # any HTTP answer counts, even a 404: the hub itself then says what is wrong
        assert no_answer(f"http://127.0.0.1:{answering.getsockname()[1]}", timeout=5) is None
    finally:
        thread.join(5)
        answering.close()
    silent = no_answer(f"http://127.0.0.1:{silent_server}", timeout=0.5)
    assert silent == (
        f"127.0.0.1:{silent_server} accepted a connection but did not answer within 0.5 s"
    )
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert "could not be reached" in no_answer(f"http://127.0.0.1:{port}", timeout=1)


# ----------------------------------------------------------------- absurd class counts


@pytest.mark.parametrize("weights", ["none", "auto"])
def test_a_head_too_big_for_memory_is_refused_before_allocating(weights):
    # 10**9 classes x 1,024 features: a 4 TB classifier; torch would try to allocate it
    with pytest.raises(tlw.ConfigError) as err:
        tlw.create_model(SMALL, 10**9, weights=weights)
    text = str(err.value)
    assert "num_classes=1,000,000,000" in text and "TB" in text, text
    assert "len(data.classes)" in text and "memory" in text, text


def test_a_large_but_real_class_count_still_works():
    # ImageNet-21k's 21,843 classes: far below any memory limit, no check in the way
    model = tlw.create_model(SMALL, 21_843, weights="none")
    assert model.get_classifier().out_features == 21_843
