"""What a judgement says, shared by the step function (semantics) and the exit machine (exitloop).

A step is accepted with its next states and the choices it reveals, rejected with the property it
breaks (and that property's cited sentence), or undefined.  The permitted failures and the checks
on a new key's value are here because both a plain ``create`` and a destructor's ``new`` make them.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.model.ops import EAGAIN, ENOMEM, Choice
from tsdcheck.model.state import Params, State
from tsdcheck.properties.catalog import cite


class TraceError(ValueError):
    """The trace is not well formed (a thread never spawned, a key named out of order)."""


@dataclass(frozen=True)
class Result:
    """The verdict on one step.

    ``states`` are the candidate next states (empty unless accepted).  A rejected step has a
    ``reason`` (ending with the property it breaks and that property's cited sentence), the
    property's id ``prop`` and the ``allowed`` outcomes; a step into undefined behaviour has
    ``undefined``.
    """

    states: tuple[State, ...] = ()
    choices: frozenset[Choice] = frozenset()
    reason: str | None = None
    allowed: tuple[str, ...] = ()
    undefined: str | None = None
    prop: str | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.states)


Problem = tuple[str, str]
"""Why an observation is not allowed: the property it breaks (catalog id) and what happened."""


def reject(prop: str, reason: str, *allowed: str) -> Result:
    """A rejection always names the property it breaks, with its citation (never 'the model')."""
    return Result(reason=f"{reason}; {cite(prop)}", allowed=allowed, prop=prop)


SET_ENOMEM = Choice("pthread_setspecific", "ENOMEM (a permitted failure: the value is left as it was)")
CREATE_ENOMEM = Choice("pthread_key_create", "ENOMEM (a permitted failure: no key is created)")
CREATE_EAGAIN_EARLY = Choice(
    "pthread_key_create", "EAGAIN below the key limit (a permitted failure: the system lacked other resources)"
)
"""Permitted failures (POSIX pthread_setspecific: "shall fail if: [ENOMEM] Insufficient memory exists to
associate the non-NULL value with the key"; pthread_key_create: "shall fail ... [EAGAIN] The system lacked
the necessary resources to create another thread-specific data key, or the system-imposed limit ... has
been exceeded. [ENOMEM] Insufficient memory exists to create the key."): choices, not violations."""


PERMITTED_FAILURES = frozenset({SET_ENOMEM, CREATE_ENOMEM, CREATE_EAGAIN_EARLY})
"""Choices an implementation makes by failing as POSIX permits: recorded, but not loose points of
the texts (no witness can make a library fail for lack of resources)."""


def fresh_raw_problem(state: State, raw: int | None, params: Params) -> Problem | None:
    """Why a new key's value ``raw`` is not allowed (it must differ from every live key's value, and
    from every value ever handed out under a profile that wants keys unique), or None.  A value the
    trace does not report (a hand-written ``create k0 -> 0``) is unknown: nothing to compare."""
    if raw is None:
        return None
    clash = state.by_raw.get(raw)
    if clash is not None:
        return "keys-distinct", f"new key value {raw} equals the value of live key k{clash}"
    if params.raws_unique_forever and raw in state.raws_used:
        return "keys-never-reused", f"new key value {raw} was handed out before (this profile wants every key unique)"
    return None


def permitted_create_failure(rc: str, params: Params) -> Choice | None:
    """The choice a failed pthread_key_create below the limit made, when the profile permits it."""
    if rc == ENOMEM:
        return CREATE_ENOMEM
    if rc == EAGAIN and not params.full_key_limit:
        return CREATE_EAGAIN_EARLY
    return None
