"""The toy data: its file matches its checksum, and the seed regenerates it byte for byte."""

import shutil

import numpy as np
import pytest

from rndlib import data, paths


def test_toy_1d_matches_its_checksum_and_specification():
    toy = data.load_dataset("toy_1d")
    assert toy.x_train.shape == (20, 1) and toy.y_train.shape == (20, 1)
    assert toy.x_test.shape == (200, 1)
    x = toy.x_train[:, 0]
    assert np.all((np.abs(x) >= 2 / 3) & (np.abs(x) <= 2)) and np.sum(x < 0) == 10
    assert np.ptp(toy.x_test) == 12.0
    noise = toy.y_train - toy.x_train * np.sin(toy.x_train)
    assert 0.05 < noise.std() < 0.2


def test_seed_regenerates_the_committed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA", tmp_path)
    monkeypatch.setattr(data, "CHECKSUMS", tmp_path / "SHA256SUMS")
    digest = data.write_dataset("toy_1d", data.make_toy_1d())
    committed = (paths.ROOT / "data" / "toy_1d.csv").read_bytes()
    assert (tmp_path / "toy_1d.csv").read_bytes() == committed
    assert f"{digest}  toy_1d.csv" in (paths.ROOT / "data" / "SHA256SUMS").read_text()


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(paths.ROOT / "data" / "toy_1d.csv", tmp_path)
    shutil.copy(paths.ROOT / "data" / "SHA256SUMS", tmp_path)
    monkeypatch.setattr(paths, "DATA", tmp_path)
    monkeypatch.setattr(data, "CHECKSUMS", tmp_path / "SHA256SUMS")
    with (tmp_path / "toy_1d.csv").open("a") as handle:
        handle.write("train,0.0,0.0\n")
    with pytest.raises(ValueError, match="SHA-256"):
        data.load_dataset("toy_1d")


def test_results_are_written_deterministically(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS", tmp_path)
    monkeypatch.setattr(paths, "OUTPUT", tmp_path)
    results = {"b": np.float64(0.1), "a": np.arange(3), "c": [np.float32(1.5)]}
    data.write_results("99_example", results)
    first = (tmp_path / "99_example.json").read_bytes()
    data.write_results("99_example", dict(reversed(results.items())))
    assert (tmp_path / "99_example.json").read_bytes() == first
    assert first.startswith(b'{\n  "a": [\n    0,')
    with pytest.raises(ValueError):
        data.write_results("99_example", {"x": float("nan")})
