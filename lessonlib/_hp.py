"""The ``hp`` contract: every key a run reads is given, every key given is read.

``train.fit`` and ``train.sweep`` pass float hyperparameters in a dict ``hp`` that the model, the
optimizer factory, the penalty and the projection read as they like. A key that one of them reads
but nobody gave would surface as a bare ``KeyError`` deep inside tracing; a key given that nothing
reads (``lamda`` for ``lam``) would be silently ignored. Here each part is traced once with
``jax.eval_shape`` (shapes only, nothing is computed) on a view of ``hp`` that records its reads,
and ``contract_error`` turns the record into one readable message.

>>> import jax, jax.numpy as jnp
>>> h = {"lr": jax.ShapeDtypeStruct((), jnp.float32), "lamda": jax.ShapeDtypeStruct((), jnp.float32)}
>>> parts = {"penalty": lambda hp: hp["lam"] * 2.0, "optimizer": lambda hp: -hp["lr"]}
>>> print(contract_error(reads(parts, hp=h), sorted(h)))
hp is missing 'lam' (read by the penalty); the keys given are ['lamda', 'lr']; is 'lamda' a misspelling of 'lam'?
>>> h = {"lr": h["lr"], "lam": h["lr"], "lamda": h["lr"]}
>>> print(contract_error(reads(parts, hp=h), sorted(h)))
hp has 'lamda', which nothing reads (the penalty and optimizer read ['lam', 'lr']); did you mean 'lam'?
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp


class Reads(Mapping):
    """``hp`` as one part sees it while it is traced, recording the keys it reads.

    ``hp[k]`` of a missing key records ``k`` and returns a stand-in scalar, so that tracing goes
    on and every missing key is found in one pass; ``hp.get(k, default)`` and ``k in hp`` make
    ``k`` an optional key. Iterating (``dict(hp)``, ``hp.items()``) counts as reading every key.
    """

    def __init__(self, hp: Mapping[str, Any]):
        self._hp, self.read, self.optional, self.missing = hp, set(), set(), []
        self.everything = False

    def __getitem__(self, k):
        if k in self._hp:
            self.read.add(k)
            return self._hp[k]
        if k not in self.missing:
            self.missing.append(k)
        return jnp.zeros((), jnp.float32)

    def get(self, k, default=None):
        return self[k] if k in self else default

    def __contains__(self, k) -> bool:
        (self.read if k in self._hp else self.optional).add(k)
        return k in self._hp

    def __iter__(self) -> Iterator[str]:
        self.everything = True
        return iter(self._hp)

    def __len__(self) -> int:
        return len(self._hp)


def reads(parts: Mapping[str, Callable], *args, hp: Mapping[str, Any]) -> dict[str, Reads]:
    """Trace ``part(*args, hp_view)`` for each part (``jax.eval_shape``): what each one reads.

    ``args`` and ``hp`` may be arrays or ``jax.ShapeDtypeStruct``. A part that fails for another
    reason than a missing key (a wrong shape, say) is marked as reading everything: what it would
    have read after the failure is unknown, and the run itself will report the failure.
    """
    found: dict[str, Reads] = {}
    for name, part in parts.items():

        def traced(args, h, part=part, name=name):
            found[name] = Reads(h)
            part(*args, found[name])

        try:
            jax.eval_shape(traced, args, dict(hp))
        except Exception:
            r = found.setdefault(name, Reads({}))
            r.everything |= not r.missing
    return found


def _names(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def contract_error(found: Mapping[str, Reads], given: list[str]) -> str | None:
    """The message for keys read but not given, or given but never read; None if ``hp`` is fine."""
    missing: dict[str, list[str]] = {}
    for name, r in found.items():
        for k in r.missing:
            missing.setdefault(k, []).append(f"the {name}")
    known = set().union(*(r.read | r.optional for r in found.values()))
    unread = [k for k in given if k not in known]
    if missing:
        parts = [f"{k!r} (read by {_names(who)})" for k, who in missing.items()]
        msg = f"hp is missing {', '.join(parts)}; the keys given are {given}"
        typos = [(u, k) for k in missing for u in difflib.get_close_matches(k, unread, n=1)]
        return msg + "".join(f"; is {u!r} a misspelling of {k!r}?" for u, k in typos)
    if unread and not any(r.everything for r in found.values()):
        k = unread[0]
        close = difflib.get_close_matches(k, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"hp has {k!r}, which nothing reads (the {_names(list(found))} read {sorted(known)}){hint}"
    return None
