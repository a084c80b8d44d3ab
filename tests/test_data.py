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
    monkeypatch.setattr(paths, "STAGING", tmp_path / "staging")
    results = {"b": np.float64(0.1), "a": np.arange(3), "c": [np.float32(1.5)]}
    data.write_results("99_example", results)
    first = (tmp_path / "99_example.json").read_bytes()
    data.write_results("99_example", dict(reversed(results.items())))
    assert (tmp_path / "99_example.json").read_bytes() == first
    assert first.startswith(b'{\n  "a": [\n    0,')
    with pytest.raises(ValueError):
        data.write_results("99_example", {"x": float("nan")})


def test_diabetes_split_is_seeded_and_standardised():
    one, again, other = (data.load_diabetes_split(s) for s in (0, 0, 1))
    np.testing.assert_array_equal(one.x_train, again.x_train)
    assert not np.array_equal(one.x_train, other.x_train)
    assert one.x_train.shape == (309, 10) and one.y_test.shape == (133, 1)
    np.testing.assert_allclose(one.y_train.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(one.y_train.std(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.mean(np.sum(one.x_train**2, axis=1)), 1.0, rtol=1e-12)


def test_digits_ood_split():
    split = data.load_digits_ood(seed=0, n_train=300, n_test=200)
    assert split.x_train.shape == (300, 64) and split.y_train.shape == (300, 5)
    assert split.x_test.shape == (400, 64) and split.is_ood.sum() == 200
    assert np.all(split.y_train.sum(axis=1) == 1)
    assert np.array_equal(split.digit_test >= 5, split.is_ood.astype(bool))
    assert set(split.digit_test) == set(range(10))
    with pytest.raises(ValueError, match="n_train"):
        data.load_digits_ood(seed=0, n_train=900, n_test=200)


def test_regression_problem_is_reproducible_and_standardised():
    a, b = data.make_friedman(2000, 10, 3), data.make_friedman(2000, 10, 3)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.x_train.shape == (2000, data.FRIEDMAN_DIM) and a.y_test.shape == (10, 1)
    assert abs(np.mean(np.sum(a.x_train**2, axis=1)) - 1.0) < 0.05  # unit mean square norm
    assert abs(np.var(a.y_train) - (1 + 0.25) * (4.8 / 4.8) ** 2) < 0.4


def test_sine_problem_is_reproducible_and_named():
    a, b = data.make_sine(30, 10, seed=2), data.make_sine(30, 10, seed=2)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.x_train.shape == (30, data.SINE_DIM) and np.all(np.abs(a.y_train) <= 1)
    with pytest.raises(ValueError, match="n_test"):
        data.make_sine(30, 0)
    with pytest.raises(ValueError, match="seed"):
        data.make_friedman(30, 10, seed=-1)
