"""What a proof run gives, as data (no z3 here): reports render it, the CLI saves its traces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tsdcheck.model.ops import Obs, Op
from tsdcheck.properties.catalog import Property

if TYPE_CHECKING:
    from tsdcheck.symbolic.prove import Prover

Status = Literal["proved for all depths", "proved to depth", "counterexample", "unknown"]


@dataclass
class Outcome:
    subject: Property
    """The property proved or broken."""
    status: Status
    depth: int
    """The bound proved, or the counterexample's length in steps of the encoding."""
    seconds: float = 0.0
    trace: list[tuple[Op, Obs]] | None = None
    note: str = ""

    @property
    def prop(self) -> str:
        """The property's id: what tables, file names and JSON show."""
        return self.subject.id


@dataclass
class ProfileRun:
    profile: str
    prover: Prover
    outcomes: list[Outcome]
    lemmas: list[str]
    depth: int
    seconds: dict[str, float] = field(default_factory=dict)
    """Where the time went: 'invariants', 'induction', 'bmc' (and the depth BMC reached)."""
    bmc_depth: int = 0
    """The depth the shared BMC was taken to (the base cases, or the bound for the rest)."""
