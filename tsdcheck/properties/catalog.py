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
# The seeds are silent on how a thread ends; these come from the POSIX.1-2017 pages themselves.
PTHREAD_EXIT_PAGE = "POSIX pthread_exit() (not in the seeds)"
PTHREAD_CANCEL_PAGE = "POSIX pthread_cancel() (not in the seeds)"
CLEANUP_PAGE = "POSIX pthread_cleanup_pop() (not in the seeds)"
EXIT_PAGE = "POSIX _Exit()/exit() (not in the seeds)"
FORK_PAGE = "POSIX fork() (not in the seeds)"
GETSPECIFIC_PAGE = "POSIX pthread_getspecific() (not in the seeds)"
KEY_DELETE_PAGE = "POSIX pthread_key_delete() (not in the seeds)"
CANCEL_SECTION = "POSIX XSH 2.9.5.3 Thread Cancellation Cleanup Handlers (not in the seeds)"
TESTCANCEL_PAGE = "POSIX pthread_testcancel() (not in the seeds)"
JOIN_PAGE = "POSIX pthread_join() (not in the seeds)"


FULL_KEY_LIMIT = ("default", "dec", "glibc", "musl", "dietlibc", "pth", "c11")
"""Profiles that promise every key up to the limit (``full_key_limit`` in profiles.toml; a test
holds the two equal): under ``posix`` an EAGAIN below the limit is a permitted failure."""


@dataclass(frozen=True)
class Property:
    id: str
    summary: str
    source: str
    """Seed file the property comes from, or the POSIX page where the seeds are silent."""
    quote: str
    """The sentence, quoted briefly."""
    profiles: tuple[str, ...] | None = None
    """Profiles under which it holds; None for every profile."""

    def applies(self, profile: str) -> bool:
        return self.profiles is None or profile in self.profiles

    @property
    def in_seeds(self) -> bool:
        return self.source.endswith(".txt")


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
        "pthread_key_create succeeds while fewer than the limit are live, under a profile that promises the "
        "full limit (POSIX also lets it fail with EAGAIN for lack of other resources, or ENOMEM)",
        DEC,
        "The Threads Library imposes a maximum number of thread-specific data keys, equal to the symbolic "
        "constant PTHREAD_KEYS_MAX.",
        profiles=FULL_KEY_LIMIT,
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
    Property(
        "cleanup-before-dtors",
        "pthread_exit and cancellation run every cleanup handler, most recent first, before any destructor",
        PTHREAD_EXIT_PAGE,
        "Any cancellation cleanup handlers that have been pushed and not yet popped shall be popped in the "
        "reverse order that they were pushed and then executed. After all cancellation cleanup handlers have "
        "been executed, if the thread has any thread-specific data, appropriate destructor functions shall be "
        "called in an unspecified order.",
    ),
    Property(
        "pop-runs-top",
        "pthread_cleanup_pop runs the most recently pushed handler if and only if asked to",
        CLEANUP_PAGE,
        "The pthread_cleanup_pop() function shall remove the routine at the top of the calling thread's "
        "cancellation cleanup stack and optionally invoke it (if execute is non-zero).",
    ),
    Property(
        "join-status",
        "joining a cancelled thread gives PTHREAD_CANCELED; a thread that returned or exited, its own value",
        PTHREAD_CANCEL_PAGE,
        "When the last destructor function returns, thread shall be terminated.",
    ),
    Property(
        "dtor-cancel-disabled",
        "a destructor runs with cancelability disabled (the state it reads at entry)",
        CANCEL_SECTION,
        "When a cancellation request is acted upon, or when a thread calls pthread_exit(), the thread first "
        "disables cancellation by setting its cancelability state to PTHREAD_CANCEL_DISABLE ... The "
        "cancelability state shall remain set to PTHREAD_CANCEL_DISABLE until the thread has terminated.",
    ),
    Property(
        "no-cancel-in-exit",
        "a cancellation requested inside a destructor is not acted on: pthread_testcancel has no effect while "
        "cancelability is disabled, as it is until the thread has terminated (XSH 2.9.5.3)",
        TESTCANCEL_PAGE,
        "The pthread_testcancel() function shall have no effect if cancelability is disabled.",
    ),
    Property(
        "main-exit-goes-on",
        "pthread_exit in the main thread runs its destructors and the process goes on; it exits with 0 "
        "after the last thread",
        PTHREAD_EXIT_PAGE,
        "The process shall exit with an exit status of 0 after the last thread has been terminated.",
    ),
    Property(
        "no-dtors-at-process-exit",
        "exit() and returning from main run no cleanup handler and no destructor",
        EXIT_PAGE,
        "Threads terminated by a call to _Exit() or _exit() shall not invoke their cancellation cleanup "
        "handlers or per-thread data destructors.",
    ),
    Property(
        "fork-child-replica",
        "after fork the child's one thread keeps its values; the other threads are gone without destructors",
        FORK_PAGE,
        "the new process shall contain a replica of the calling thread and its entire address space",
    ),
    Property(
        "get-returns-own-value",
        "pthread_getspecific returns the value the calling thread bound to the key (NULL if none)",
        GETSPECIFIC_PAGE,
        "The pthread_getspecific() function shall return the value currently bound to the specified key on "
        "behalf of the calling thread.",
    ),
    Property(
        "dtor-calls-defined",
        "pthread_getspecific and pthread_setspecific inside a destructor behave as anywhere else",
        GETSPECIFIC_PAGE,
        "Both pthread_getspecific() and pthread_setspecific() may be called from a thread-specific data "
        "destructor function.",
    ),
    Property(
        "delete-in-dtor",
        "pthread_key_delete of a live key succeeds when called from a destructor",
        KEY_DELETE_PAGE,
        "The pthread_key_delete() function shall be callable from within destructor functions.",
    ),
)

BY_ID = {p.id: p for p in CATALOG}


class UnknownProperty(ValueError):
    """An id that names no property of the catalog (from a command line or an API call)."""


def lookup(pid: str) -> Property:
    """The property ``pid`` names: ids are parsed here, at the edge, and Property objects are
    passed on, so a misspelt id is an error listing the known ones, not a property left out."""
    try:
        return BY_ID[pid]
    except KeyError:
        raise UnknownProperty(f"unknown property {pid!r} (known: {', '.join(BY_ID)})") from None


def cite(prop: str) -> str:
    """``prop`` with where it comes from, for a rejection: 'breaks ID (SOURCE: "QUOTE")'."""
    p = BY_ID[prop]
    return f'breaks {p.id} ({p.source}: "{p.quote}")'
