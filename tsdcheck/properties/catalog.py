"""The property catalog: each property has an id, the seed sentence it comes from, and a
predicate over observed traces.

The predicates are written independently of the set-valued model (a plain replay of the
observations), so the two check each other: a trace the model accepts satisfies every
property, and a trace that breaks a property is rejected by the model.
"""

from __future__ import annotations

from dataclasses import dataclass

DEC = "000_a4725e9d2e15b025.txt"
DEC2 = "002_21b0191776a8b8f2.txt"
POSIX = "003_e1b53a18102db4e5.txt"


@dataclass(frozen=True)
class Property:
    id: str
    summary: str
    source: str
    """Seed file the property comes from."""
    quote: str
    """The sentence, quoted briefly."""
    profiles: tuple[str, ...] | None = None
    """Profiles under which it holds; None for every profile."""

    def applies(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles


CATALOG: tuple[Property, ...] = (
    Property(
        "dtor-sees-null",
        "a destructor reading its own key gets NULL",
        DEC,
        "Before each destructor is called, the thread's value for the corresponding key is set to NULL.",
    ),
    Property(
        "dtor-arg-is-value",
        "a destructor is called with the value the thread held",
        DEC,
        "the destructor function is called with the current associated value as its sole argument",
    ),
    Property(
        "no-dtor-for-null",
        "no destructor call for a NULL value",
        DEC,
        "if a key has a non-NULL destructor pointer, and the thread has a non-NULL value associated with that key",
    ),
    Property(
        "no-dtor-without-dtor",
        "no destructor call for a key created without one",
        DEC,
        "An optional destructor function can be associated with each key.",
    ),
    Property(
        "no-dtor-after-delete",
        "no destructor call for a deleted key",
        DEC,
        "the key remains unless destroyed by a call to pthread_key_delete()",
    ),
    Property(
        "dtor-only-at-exit",
        "pthread_key_delete, pthread_setspecific and the rest call no destructor",
        DEC,
        "At thread exit, if a key has a non-NULL destructor pointer ... the destructor function is called",
    ),
    Property(
        "pass-visits-all",
        "a pass calls every due destructor before any is called again",
        POSIX,
        "연계 소멸자 있는 모든 NULL 아닌 값들에 대해 소멸자를 모두 호출한 후에도 ... 그 과정을 반복한다",
    ),
    Property(
        "at-least-n-passes",
        "values left at exit only after PTHREAD_DESTRUCTOR_ITERATIONS passes",
        POSIX,
        "최소 PTHREAD_DESTRUCTOR_ITERATIONS번 반복한 후에도 ... 소멸자 호출을 중단할 수도 있고",
    ),
    Property(
        "at-most-n-passes",
        "no more than PTHREAD_DESTRUCTOR_ITERATIONS passes (DEC: four)",
        DEC,
        "If there are still non-NULL values for any key with a destructor after four repetitions of this "
        "sequence, the thread is terminated.",
        # Every reading that stops after the last pass: all but POSIX's "may stop or continue".
        profiles=("default", "dec", "glibc", "musl", "dietlibc", "pth", "c11"),
    ),
    Property(
        "new-key-null",
        "a new key reads NULL in every thread, also when its slot is reused",
        POSIX,
        "키 생성 시 모든 활성 스레드에서 새 키에 NULL 값이 연계된다.",
    ),
    Property(
        "new-thread-null",
        "a new thread reads NULL for every key",
        POSIX,
        "스레드 생성 시 새 스레드에서 모든 정의된 키에 NULL 값이 연계된다.",
    ),
    Property(
        "values-per-thread",
        "a value set in one thread is not seen by another",
        DEC,
        "the values bound to the key by pthread_setspecific() are maintained on a per-thread basis",
    ),
    Property(
        "values-persist",
        "a thread reads back the value it last set",
        DEC,
        "the values ... persist for the life of the calling thread",
    ),
    Property(
        "keys-distinct",
        "live keys have distinct values",
        DEC,
        "Each call to this routine creates a new cell that is unique within an application invocation.",
    ),
    Property(
        "keys-never-reused",
        "a key value is never handed out twice (the DEC reading of 'unique cell')",
        DEC,
        "Each call to this routine creates a new cell that is unique within an application invocation.",
        profiles=("dec",),
    ),
    Property(
        "create-below-limit",
        "pthread_key_create succeeds while fewer than the limit are live",
        POSIX,
        "EAGAIN ... 프로세스당 키 총개수에 대한 시스템 제한인 PTHREAD_KEYS_MAX를 초과했다",
    ),
    Property(
        "create-eagain-at-limit",
        "pthread_key_create fails with EAGAIN at the limit",
        DEC,
        "The Threads Library imposes a maximum number of thread-specific data keys, equal to the symbolic "
        "constant PTHREAD_KEYS_MAX.",
    ),
    Property(
        "calls-return",
        "every call returns: no hang, no crash, no runaway destructor loop with finite programs",
        POSIX,
        "성공 시 pthread_key_create() 함수는 ... 0을 반환한다",
    ),
    Property(
        "success-codes",
        "operations on live keys return 0",
        POSIX,
        "성공 시 pthread_key_create() 함수는 새로 생성한 키 값을 *key에 저장하고 0을 반환한다.",
    ),
)

BY_ID = {p.id: p for p in CATALOG}
