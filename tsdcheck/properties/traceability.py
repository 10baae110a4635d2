"""Every normative sentence of the seed texts, with the properties that formalise it or the
reason it is not tested.  Seeds 000 and 002 carry the same DEC text (one flowed, one
formatted), so its sentences are listed once under both names.  The seeds say only "at thread
exit"; how a thread ends (pthread_exit, cancellation, exit, fork) is taken from the POSIX pages
themselves, listed last under their own names.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.properties.catalog import (
    CLEANUP_PAGE,
    DEC,
    DEC2,
    EXIT_PAGE,
    FORK_PAGE,
    POSIX,
    PTHREAD_CANCEL_PAGE,
    PTHREAD_EXIT_PAGE,
)


@dataclass(frozen=True)
class Row:
    seed: str
    sentence: str
    properties: tuple[str, ...] = ()
    why_not: str = ""

    def cell(self) -> str:
        return ", ".join(self.properties) if self.properties else f"not tested: {self.why_not}"


_DECS = f"{DEC} = {DEC2}"
_LOOSE = "a point of looseness: the model allows every option and the fuzz summary records the choice"

ROWS: tuple[Row, ...] = (
    Row(
        _DECS,
        "This routine generates a unique, thread-specific data key that is visible to all threads in the process.",
        ("keys-distinct", "success-codes"),
    ),
    Row(
        _DECS,
        "The variable key provided by this routine is an opaque object used to locate thread-specific data.",
        why_not="representation only; raw key values are compared for distinctness, never interpreted",
    ),
    Row(
        _DECS,
        "... the values bound to the key by pthread_setspecific() are maintained on a per-thread basis and persist "
        "for the life of the calling thread.",
        ("values-per-thread", "values-persist"),
    ),
    Row(_DECS, "The initial value of the key in all threads is NULL.", ("new-key-null", "new-thread-null")),
    Row(
        _DECS,
        "The Threads Library imposes a maximum number of thread-specific data keys, equal to the symbolic "
        "constant PTHREAD_KEYS_MAX.",
        ("create-below-limit", "create-eagain-at-limit"),
    ),
    Row(
        _DECS,
        "This routine generates and returns a new key value. The key reserves a cell within each thread.",
        ("success-codes", "values-per-thread"),
    ),
    Row(
        _DECS,
        "Each call to this routine creates a new cell that is unique within an application invocation.",
        ("keys-distinct", "keys-never-reused"),
    ),
    Row(
        _DECS,
        "Keys must be generated from initialization code that is guaranteed to be called only once within each "
        "process.",
        why_not="an obligation on applications; the trace language creates each key exactly once",
    ),
    Row(
        _DECS,
        "When a thread terminates, its thread-specific data is automatically destroyed; however, the key remains "
        "unless destroyed by a call to pthread_key_delete().",
        ("no-dtor-after-delete", "success-codes"),
    ),
    Row(_DECS, "An optional destructor function can be associated with each key.", ("no-dtor-without-dtor",)),
    Row(
        _DECS,
        "At thread exit, if a key has a non-NULL destructor pointer, and the thread has a non-NULL value associated "
        "with that key, the destructor function is called with the current associated value as its sole argument.",
        ("no-dtor-for-null", "no-dtor-without-dtor", "dtor-arg-is-value", "dtor-only-at-exit", "pass-visits-all"),
    ),
    Row(
        _DECS,
        "The order in which thread-specific data destructors are called at thread termination is undefined.",
        why_not=_LOOSE,
    ),
    Row(
        _DECS,
        "Before each destructor is called, the thread's value for the corresponding key is set to NULL.",
        ("dtor-sees-null",),
    ),
    Row(
        _DECS,
        "After the destructors have been called for all non-NULL values with associated destructors, if there are "
        "still some non-NULL values with associated destructors, then this sequence of actions is repeated.",
        ("pass-visits-all", "at-least-n-passes"),
    ),
    Row(
        _DECS,
        "If there are still non-NULL values for any key with a destructor after four repetitions of this sequence, "
        "the thread is terminated.",
        ("at-most-n-passes",),
    ),
    Row(
        _DECS,
        "At this point, any key values that represent allocated heap will be lost.",
        why_not="a consequence for memory, invisible through the TSD interface",
    ),
    Row(
        POSIX,
        "pthread_key_create() 함수는 프로세스 내 모든 스레드에게 보이는 스레드별 데이터 키를 생성한다.",
        ("keys-distinct", "success-codes"),
    ),
    Row(
        POSIX,
        "pthread_key_create()가 내놓는 키 값은 스레드별 데이터 위치를 얻는 데 쓰는 불투명 객체이다.",
        why_not="representation only",
    ),
    Row(
        POSIX,
        "pthread_setspecific()으로 키에 결속한 값은 스레드별로 관리되고 호출 스레드의 수명 동안 유지된다.",
        ("values-per-thread", "values-persist"),
    ),
    Row(POSIX, "키 생성 시 모든 활성 스레드에서 새 키에 NULL 값이 연계된다.", ("new-key-null",)),
    Row(POSIX, "스레드 생성 시 새 스레드에서 모든 정의된 키에 NULL 값이 연계된다.", ("new-thread-null",)),
    Row(POSIX, "각 키 값에 선택적으로 소멸자 함수를 연계할 수 있다.", ("no-dtor-without-dtor",)),
    Row(
        POSIX,
        "스레드 종료 시 키 값에 NULL 아닌 소멸자 포인터가 연계되어 있으면 키의 값을 NULL로 설정한 다음에 이전에 "
        "연계되어 있던 값을 유일한 인자로 하여 그 함수를 호출한다.",
        ("dtor-sees-null", "dtor-arg-is-value", "no-dtor-for-null", "dtor-only-at-exit"),
    ),
    Row(POSIX, "스레드 종료 시 여러 소멸자가 존재하는 경우에 소멸자 호출 순서는 명세되어 있지 않다.", why_not=_LOOSE),
    Row(
        POSIX,
        "연계 소멸자 있는 모든 NULL 아닌 값들에 대해 소멸자를 모두 호출한 후에도 연계 소멸자 있는 NULL 아닌 값이 "
        "있으면 그 과정을 반복한다.",
        ("pass-visits-all", "at-least-n-passes"),
    ),
    Row(
        POSIX,
        "최소 PTHREAD_DESTRUCTOR_ITERATIONS번 반복한 후에도 ... 구현에서는 소멸자 호출을 중단할 수도 있고, 또는 ... "
        "계속할 수도 있다.",
        ("at-least-n-passes", "at-most-n-passes", "calls-return"),
    ),
    Row(
        POSIX,
        "성공 시 pthread_key_create() 함수는 새로 생성한 키 값을 *key에 저장하고 0을 반환한다.",
        ("success-codes", "calls-return"),
    ),
    Row(
        POSIX,
        "EAGAIN: 자원이 부족하거나, 프로세스당 키 총개수에 대한 시스템 제한인 PTHREAD_KEYS_MAX를 초과했다.",
        ("create-eagain-at-limit", "create-below-limit"),
    ),
    Row(
        POSIX,
        "ENOMEM: 키를 생성하기에 충분한 메모리가 없다.",
        why_not="memory exhaustion is not provoked; the model assumes memory suffices, so an ENOMEM is reported",
    ),
    Row(POSIX, "pthread_key_create() 함수는 오류 코드 [EINTR]을 반환하지 않는다.", ("success-codes",)),
    Row(
        POSIX,
        "초기화 전에 키를 사용하려는 시도는 모두 프로그래밍 오류이며 (non-normative EXAMPLES)",
        why_not="undefined behaviour: never generated; a replayed trace that does it gets the verdict 'undefined'",
    ),
    Row(
        POSIX,
        "pthread_key_create() 함수에서는 어떤 묵시적 동기화도 수행하지 않는다. (RATIONALE)",
        why_not="concurrency; traces run one operation at a time (a parallel mode is planned)",
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "Any cancellation cleanup handlers that have been pushed and not yet popped shall be popped in the reverse "
        "order that they were pushed and then executed. After all cancellation cleanup handlers have been executed, "
        "if the thread has any non-NULL thread-specific data values with associated destructor functions, the "
        "destructor functions shall be called in an unspecified order.",
        ("cleanup-before-dtors",),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "An implicit call to pthread_exit() is made when a thread other than the thread in which main() was first "
        "invoked returns from the start routine that was used to create it.",
        ("cleanup-before-dtors", "at-least-n-passes"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The process shall exit with an exit status of 0 after the last thread has been terminated.",
        ("main-exit-goes-on",),
    ),
    Row(
        PTHREAD_CANCEL_PAGE,
        "When the cancellation is acted on, the cancellation cleanup handlers for thread shall be called. When the "
        "last cancellation cleanup handler returns, the thread-specific data destructor functions shall be called "
        "for thread. When the last destructor function returns, thread shall be terminated.",
        ("cleanup-before-dtors", "join-status", "no-cancel-in-exit"),
    ),
    Row(
        CLEANUP_PAGE,
        "The pthread_cleanup_pop() function shall remove the routine at the top of the calling thread's "
        "cancellation cleanup stack and optionally invoke it (if execute is non-zero).",
        ("pop-runs-top",),
    ),
    Row(
        EXIT_PAGE,
        "Threads terminated by a call to _Exit() or _exit() shall not invoke their cancellation cleanup handlers "
        "or per-thread data destructors.",
        ("no-dtors-at-process-exit",),
    ),
    Row(
        FORK_PAGE,
        "A process shall be created with a single thread. If a multi-threaded process calls fork(), the new process "
        "shall contain a replica of the calling thread and its entire address space",
        ("fork-child-replica", "new-thread-null"),
    ),
)
