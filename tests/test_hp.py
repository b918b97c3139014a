"""Tests for lessonlib._hp: what counts as reading a key, and the messages built from the reads.

``fit``/``sweep`` end to end are in ``tests/test_train.py``; here the recording view itself.
"""

import jax
import jax.numpy as jnp
import pytest

from lessonlib import _hp

F32 = jax.ShapeDtypeStruct((), jnp.float32)


def reads_of(part, given=("lr",)):
    return _hp.reads({"part": part}, hp={k: F32 for k in given})["part"]


def test_getitem_get_and_in_are_reads():
    r = reads_of(lambda hp: hp["lr"] * hp.get("decay", 0.9), given=("lr", "decay"))
    assert r.read == {"lr", "decay"} and not r.missing and not r.optional

    r = reads_of(lambda hp: hp["lr"] * (hp["m"] if "m" in hp else 1.0) * hp.get("bn", 0.9))
    assert r.read == {"lr"} and r.optional == {"m", "bn"} and not r.missing


def test_every_missing_key_is_found_in_one_trace():
    r = reads_of(lambda hp: hp["a"] + hp["b"] + hp["a"], given=())
    assert r.missing == ["a", "b"]


def test_iterating_counts_as_reading_everything():
    assert reads_of(lambda hp: sum(hp.values())).everything
    assert reads_of(lambda hp: dict(hp)["lr"]).everything


def test_a_part_failing_for_another_reason_is_not_blamed_on_hp():
    def broken(hp):
        return jnp.ones(2) @ jnp.ones(3) * hp["lr"]  # a shape error, not an hp problem

    found = _hp.reads({"part": broken}, hp={"lr": F32, "extra": F32})
    assert found["part"].everything and _hp.contract_error(found, ["extra", "lr"]) is None


@pytest.mark.parametrize(
    "parts, given, message",
    [
        ({"model": lambda hp: hp["dropout"]}, ["lr"], "hp is missing 'dropout' (read by the model); the keys given are ['lr']"),
        ({"model": lambda hp: hp["x"], "penalty": lambda hp: hp["x"]}, [], "hp is missing 'x' (read by the model and the penalty); the keys given are []"),
        ({"penalty": lambda hp: hp["lam"]}, ["lam", "lamda"], "hp has 'lamda', which nothing reads (the penalty read ['lam']); did you mean 'lam'?"),
        ({"penalty": lambda hp: hp["lam"]}, ["lam", "zzz"], "hp has 'zzz', which nothing reads (the penalty read ['lam'])"),
        ({"model": lambda hp: hp.get("bn_momentum", 0.9), "optimizer": lambda hp: hp["lr"]}, ["bn_momentun", "lr"], "hp has 'bn_momentun', which nothing reads (the model and optimizer read ['bn_momentum', 'lr']); did you mean 'bn_momentum'?"),
        ({"penalty": lambda hp: hp["lam"]}, ["lam"], None),
    ],
)  # fmt: skip
def test_contract_messages(parts, given, message):
    assert _hp.contract_error(_hp.reads(parts, hp={k: F32 for k in given}), given) == message
