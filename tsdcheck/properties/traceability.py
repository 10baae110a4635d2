"""Every normative sentence of the seed texts, with the properties that formalise it or the
reason it is not tested.  Seeds 000 and 002 carry the same DEC text (one flowed, one
formatted), so its sentences are listed once under both names.  The seeds say only "at thread
exit"; how a thread ends (pthread_exit, cancellation, exit, fork) is taken from the POSIX pages
themselves, listed last under their own names.  Each of those rows says which edition and page
its quote was checked against word for word, or that it could not be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from tsdcheck.properties.catalog import (
    CANCEL_SECTION,
    CLEANUP_PAGE,
    DEC,
    DEC2,
    EXIT_PAGE,
    FORK_PAGE,
    GETSPECIFIC_PAGE,
    JOIN_PAGE,
    KEY_DELETE_PAGE,
    POSIX,
    PTHREAD_CANCEL_PAGE,
    PTHREAD_EXIT_PAGE,
    TESTCANCEL_PAGE,
)


@dataclass(frozen=True)
class Row:
    seed: str
    sentence: str
    properties: tuple[str, ...] = ()
    why_not: str = ""
    checked: str = ""
    """For a page outside the seeds: the edition and page the quote was checked against, or
    "not checked: " and why (the seeds themselves are checked by splitting them, in the tests)."""

    def cell(self) -> str:
        return ", ".join(self.properties) if self.properties else f"not tested: {self.why_not}"


_DECS = f"{DEC} = {DEC2}"
_EXPLAINS = "explanatory: says what TSD is for, asks nothing of an implementation"
_UNDEFINED = "undefined behaviour: never generated; a replayed trace that does it gets the verdict 'undefined'"
_PERMITTED = "a permitted failure: the model accepts it, leaves the state as it was and records the choice"
_LOOSE = "a point of looseness: the model allows every option and the fuzz summary records the choice"
_MAN_POSIX_2003 = "mkerrisk/man-pages@e8131de37a62c6d653cf3513de455e61abc29028"
"""The last tree of the Linux man-pages project holding the POSIX Programmer's Manual pages (IEEE Std
1003.1, 2003 edition) before they moved to man-pages-posix."""
UNCHECKED = "not checked: "


def _y2017(page: str) -> str:
    """Checked against the POSIX.1-2017 page as the POSIX Programmer's Manual (2017) carries it."""
    return f"POSIX.1-2017, {page}, checked against https://man.archlinux.org/man/{page}.3p.en"


def _y2003(page: str, file: str = "") -> str:
    """Checked against the 2003 edition only: the stored 2017 pages do not reach this sentence."""
    return (
        f"POSIX.1-2001 (2003 edition), {page}, checked against {_MAN_POSIX_2003}:man3p/{file or page}.3p; "
        "the 2017 page's text was not in the stored pages"
    )


_TRANSCRIBED_2008 = (
    "POSIX.1-2008 (the text names 'this volume of POSIX.1-2008'), {where}, checked against a transcription in a "
    "source file of the stored public-code index (file id 46258106837; the index does not name its repository): "
    "no copy of the Open Group's own page was stored"
)
_SECTION = _TRANSCRIBED_2008.format(where="XSH 2.9.5.3 Thread Cancellation Cleanup Handlers")
"""An older edition (quoted in FreeBSD libthr commit cdcffc3f) has 'remains set to PTHREAD_CANCEL_DISABLE' and
'It has no effect if' where POSIX.1-2008 has 'shall remain set' and 'The behavior is undefined if'."""

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
        'Thread-specific data allows client software to associate "static" information with the current thread.',
        why_not=_EXPLAINS,
    ),
    Row(
        _DECS,
        "For example, where a routine declares a variable static in a single-threaded program, a multithreaded "
        "version of the program might create a thread- specific data key to store the same variable.",
        why_not=_EXPLAINS,
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
    Row(_DECS, "(See the pthread_once() description for more information.)", why_not="a cross-reference"),
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
        _DECS,
        "Note that this occurs only when a destructor performs some action that creates a new value for some key.",
        why_not="explains when values remain; destructor programs that re-set (reset, set) are how traces reach it",
    ),
    Row(
        _DECS,
        "Your program's destructor code should attempt to avoid this sort of circularity.",
        why_not="advice to applications",
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
    Row(POSIX, "아니면 오류를 나타내는 오류 번호를 반환한다.", ("success-codes",)),
    Row(POSIX, "다음 경우에 pthread_key_create() 함수가 실패한다.", ("create-eagain-at-limit",)),
    Row(
        POSIX,
        "EAGAIN: 자원이 부족하거나, 프로세스당 키 총개수에 대한 시스템 제한인 PTHREAD_KEYS_MAX를 초과했다.",
        ("create-eagain-at-limit", "create-below-limit"),
    ),
    Row(
        POSIX,
        "ENOMEM: 키를 생성하기에 충분한 메모리가 없다.",
        why_not=_PERMITTED + " (memory exhaustion is not provoked)",
    ),
    Row(POSIX, "pthread_key_create() 함수는 오류 코드 [EINTR]을 반환하지 않는다.", ("success-codes",)),
    Row(
        POSIX,
        "초기화 전에 키를 사용하려는 시도는 모두 프로그래밍 오류이며 (non-normative EXAMPLES)",
        why_not=_UNDEFINED,
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
        "if the thread has any thread-specific data, appropriate destructor functions shall be called in an "
        "unspecified order.",
        ("cleanup-before-dtors",),
        checked=_y2017("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "An implicit call to pthread_exit() is made when a thread other than the thread in which main() was first "
        "invoked returns from the start routine that was used to create it.",
        ("cleanup-before-dtors", "at-least-n-passes"),
        checked=_y2017("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The process shall exit with an exit status of 0 after the last thread has been terminated.",
        ("main-exit-goes-on",),
        checked=_y2003("pthread_exit"),
    ),
    Row(
        PTHREAD_CANCEL_PAGE,
        "When the cancellation is acted on, the cancellation cleanup handlers for thread shall be called. When the "
        "last cancellation cleanup handler returns, the thread-specific data destructor functions shall be called "
        "for thread. When the last destructor function returns, thread shall be terminated.",
        ("cleanup-before-dtors", "join-status", "no-cancel-in-exit"),
        checked=_y2017("pthread_cancel"),
    ),
    Row(
        CLEANUP_PAGE,
        "The pthread_cleanup_pop() function shall remove the routine at the top of the calling thread's "
        "cancellation cleanup stack and optionally invoke it (if execute is non-zero).",
        ("pop-runs-top",),
        checked=_y2003("pthread_cleanup_pop", "pthread_cleanup_push"),
    ),
    Row(
        EXIT_PAGE,
        "Threads terminated by a call to _Exit() or _exit() shall not invoke their cancellation cleanup handlers "
        "or per-thread data destructors.",
        ("no-dtors-at-process-exit",),
        checked=_y2003("exit") + " (in 2017 it is on the _Exit page)",
    ),
    Row(
        FORK_PAGE,
        "A process shall be created with a single thread. If a multi-threaded process calls fork(), the new process "
        "shall contain a replica of the calling thread and its entire address space",
        ("fork-child-replica", "new-thread-null"),
        checked=_y2003("fork"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The pthread_exit() function shall terminate the calling thread and make the value value_ptr available to "
        "any successful join with the terminating thread.",
        ("join-status",),
        checked=_y2017("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "Thread termination does not release any application visible process resources, including, but not "
        "limited to, mutexes and file descriptors, nor does it perform any process-level cleanup actions",
        ("main-exit-goes-on",),
        checked=_y2017("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The function's return value shall serve as the thread's exit status.",
        ("join-status",),
        checked=_y2017("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The behavior of pthread_exit() is undefined if called from a cancellation cleanup handler or destructor "
        "function that was invoked as a result of either an implicit or explicit call to pthread_exit().",
        why_not=_UNDEFINED + " (no destructor program calls pthread_exit)",
        checked="POSIX.1-2008 (2016 edition), pthread_exit, checked against https://pubs.opengroup.org/onlinepubs/9699919799.2016edition/functions/pthread_exit.html",
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "After a thread has terminated, the result of access to local (auto) variables of the thread is undefined.",
        why_not="the application's memory, outside the TSD interface",
        checked=_y2003("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The behavior shall be as if the implementation called exit() with a zero argument at thread termination time.",
        ("main-exit-goes-on", "no-dtors-at-process-exit"),
        checked=_y2003("pthread_exit"),
    ),
    Row(
        PTHREAD_EXIT_PAGE,
        "The pthread_exit() function cannot return to its caller.",
        ("calls-return",),
        checked=_y2003("pthread_exit"),
    ),
    Row(
        JOIN_PAGE,
        "The pthread_join() function shall suspend execution of the calling thread until the target thread "
        "terminates, unless the target thread has already terminated. On return from a successful pthread_join() "
        "call with a non-NULL value_ptr argument, the value passed to pthread_exit() by the terminating thread "
        "shall be made available in the location referenced by value_ptr.",
        ("join-status",),
        checked=_y2017("pthread_join"),
    ),
    Row(
        JOIN_PAGE,
        "When a pthread_join() returns successfully, the target thread has been terminated.",
        ("join-status", "pass-visits-all", "at-least-n-passes"),
        checked=_y2017("pthread_join"),
    ),
    Row(
        JOIN_PAGE,
        "The results of multiple simultaneous calls to pthread_join() specifying the same target thread are "
        "undefined. If the thread calling pthread_join() is canceled, then the target thread shall not be detached.",
        why_not="the driver joins each joinable thread once, from a thread that is never cancelled",
        checked=_y2017("pthread_join"),
    ),
    Row(
        JOIN_PAGE,
        "The behavior is undefined if the value specified by the thread argument to pthread_join() does not refer "
        "to a joinable thread. The behavior is undefined if the value specified by the thread argument to "
        "pthread_join() refers to the calling thread.",
        why_not="never done: a detached thread's end is observed without a join",
        checked=_y2017("pthread_join"),
    ),
    Row(
        JOIN_PAGE,
        "If successful, the pthread_join() function shall return zero; otherwise, an error number shall be "
        "returned to indicate the error.",
        ("join-status",),
        checked=_y2017("pthread_join"),
    ),
    Row(
        PTHREAD_CANCEL_PAGE,
        "The pthread_cancel() function shall request that thread be canceled. The target thread's cancelability "
        "state and type determines when the cancellation takes effect.",
        ("join-status", "cleanup-before-dtors"),
        checked=_y2017("pthread_cancel"),
    ),
    Row(
        PTHREAD_CANCEL_PAGE,
        "The cancellation processing in the target thread shall run asynchronously with respect to the calling "
        "thread returning from pthread_cancel().",
        why_not="timing: the driver waits for the thread's end, then judges what it did",
        checked=_y2017("pthread_cancel"),
    ),
    Row(
        PTHREAD_CANCEL_PAGE,
        "If successful, the pthread_cancel() function shall return zero; otherwise, an error number shall be "
        "returned to indicate the error.",
        why_not="the driver reports the cancelled thread's end (its destructors and join status), not the return",
        checked=_y2017("pthread_cancel"),
    ),
    Row(
        CANCEL_SECTION,
        "Each thread maintains a list of cancellation cleanup handlers. The programmer uses the "
        "pthread_cleanup_push() and pthread_cleanup_pop() functions to place routines on and remove routines from "
        "this list.",
        ("pop-runs-top", "cleanup-before-dtors"),
        checked=_SECTION,
    ),
    Row(
        CANCEL_SECTION,
        "The behavior is undefined if a cancellation cleanup handler or thread-specific data destructor routine "
        "changes the cancelability state to PTHREAD_CANCEL_ENABLE.",
        why_not="the driver never does: it reads the state with PTHREAD_CANCEL_DISABLE and leaves it disabled",
        checked=_SECTION,
    ),
    Row(
        CANCEL_SECTION,
        "The routines in the thread's list of cancellation cleanup handlers are invoked one by one in LIFO "
        "sequence; that is, the last routine pushed onto the list (Last In) is the first to be invoked (First Out).",
        ("cleanup-before-dtors",),
        checked=_SECTION,
    ),
    Row(
        CANCEL_SECTION,
        "If the last cancellation cleanup handler returns, thread-specific data destructors (if any) associated "
        "with thread-specific data keys for which the thread has non-NULL values will be run, in unspecified order, "
        "as described for pthread_key_create().",
        ("cleanup-before-dtors",),
        checked=_SECTION,
    ),
    Row(
        CANCEL_SECTION,
        "After all cancellation cleanup handlers and thread-specific data destructors have returned, thread "
        "execution is terminated. ... If the thread has terminated by acting on a cancellation request, a status "
        "of PTHREAD_CANCELED is made available to any threads joining with the target.",
        ("join-status",),
        checked=_SECTION,
    ),
    Row(
        CANCEL_SECTION,
        "A cancellation cleanup handler cannot exit via longjmp() or siglongjmp().",
        why_not="an obligation on applications; the driver's handlers return",
        checked=_SECTION,
    ),
    Row(
        FORK_PAGE,
        "The fork() function shall create a new process. The new process (child process) shall be an exact copy of "
        "the calling process (parent process) except as detailed below",
        ("fork-child-replica",),
        checked=_y2003("fork"),
    ),
    Row(
        FORK_PAGE,
        "Consequently, to avoid errors, the child process may only execute async-signal-safe operations until such "
        "time as one of the exec functions is called.",
        why_not="undefined in the child of a multi-threaded process (no TSD call is async-signal-safe) unless a "
        "profile states the libc's stronger promise (fork_child_full_libc); then fork-child-replica is judged",
        checked=_y2003("fork"),
    ),
    Row(
        FORK_PAGE,
        "Upon successful completion, fork() shall return 0 to the child process and shall return the process ID "
        "of the child process to the parent process.",
        ("success-codes",),
        checked=_y2003("fork"),
    ),
    Row(
        FORK_PAGE,
        "The fork() function shall fail if: [EAGAIN] The system lacked the necessary resources to create another "
        "process ... The fork() function may fail if: [ENOMEM] Insufficient storage space is available.",
        why_not="resources are not exhausted in traces; the driver reports such a failure as a failed step",
        checked=_y2003("fork"),
    ),
    Row(
        EXIT_PAGE,
        "The exit() function shall first call all functions registered by atexit(), in the reverse order of their "
        "registration",
        why_not="traces register no atexit() functions",
        checked=_y2003("exit"),
    ),
    Row(
        EXIT_PAGE,
        "Finally, the process shall be terminated with the same consequences as described in Consequences of "
        "Process Termination.",
        ("no-dtors-at-process-exit",),
        checked=UNCHECKED
        + "the 2003 edition reads 'Finally, control shall be terminated with the consequences described below.'; "
        "the 2017 wording was not in the stored pages",
    ),
    Row(
        KEY_DELETE_PAGE,
        "The pthread_key_delete() function shall delete a thread-specific data key previously returned by "
        "pthread_key_create(). The thread-specific data values associated with key need not be NULL at the time "
        "pthread_key_delete() is called.",
        ("success-codes", "no-dtor-after-delete"),
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "It is the responsibility of the application to free any application storage or perform any cleanup "
        "actions for data structures related to the deleted key or associated thread-specific data in any threads",
        why_not="an obligation on applications",
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "Any attempt to use key following the call to pthread_key_delete() results in undefined behavior.",
        why_not=_UNDEFINED,
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "No destructor functions shall be invoked by pthread_key_delete(). Any destructor function that may have "
        "been associated with key shall no longer be called upon thread exit.",
        ("dtor-only-at-exit", "no-dtor-after-delete"),
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "If successful, the pthread_key_delete() function shall return zero; otherwise, an error number shall be "
        "returned to indicate the error. ... The pthread_key_delete() function shall not return an error code of "
        "[EINTR].",
        ("success-codes", "delete-in-dtor"),
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "The pthread_key_delete() function may fail if: [EINVAL] The key value is invalid.",
        why_not="only for a key that is not live, which is undefined: each library's answer is shown, not judged",
        checked=_y2003("pthread_key_delete"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The pthread_setspecific() function shall associate a thread-specific value with a key obtained via a "
        "previous call to pthread_key_create(). Different threads may bind different values to the same key.",
        ("values-per-thread", "values-persist", "get-returns-own-value"),
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "These values are typically pointers to blocks of dynamically allocated memory that have been reserved "
        "for use by the calling thread.",
        why_not=_EXPLAINS,
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The effect of calling pthread_getspecific() or pthread_setspecific() with a key value not obtained from "
        "pthread_key_create() or after key has been deleted with pthread_key_delete() is undefined.",
        why_not=_UNDEFINED,
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "A call to pthread_getspecific() for the thread-specific data key being destroyed shall return the value "
        "NULL, unless the value is changed (after the destructor starts) by a call to pthread_setspecific().",
        ("dtor-sees-null", "dtor-calls-defined"),
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "Calling pthread_setspecific() from a thread-specific data destructor routine may result either in lost "
        "storage (after at least PTHREAD_DESTRUCTOR_ITERATIONS attempts at destruction) or in an infinite loop.",
        ("at-least-n-passes", "at-most-n-passes"),
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "Both functions may be implemented as macros.",
        why_not="the driver calls them through the header, macro or not",
        checked=_y2003("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The pthread_getspecific() function shall return the thread-specific data value associated with the given "
        "key. If no thread-specific data value is associated with key, then the value NULL shall be returned.",
        ("get-returns-own-value", "new-key-null", "new-thread-null"),
        checked=_y2003("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "If successful, the pthread_setspecific() function shall return zero; otherwise, an error number shall be "
        "returned to indicate the error. ... No errors are returned from pthread_getspecific().",
        ("success-codes", "get-returns-own-value"),
        checked=_y2003("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The pthread_setspecific() function shall fail if: [ENOMEM] Insufficient memory exists to associate the "
        "non-NULL value with the key.",
        why_not=_PERMITTED,
        checked=UNCHECKED + "the 2003 edition reads 'Insufficient memory exists to associate the value with the key.'; "
        "the 2017 wording ('non-NULL value') was not in the stored pages",
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The pthread_setspecific() function may fail if: [EINVAL] The key value is invalid.",
        why_not="only for a key that is not live, which is undefined: each library's answer is shown, not judged",
        checked=_y2003("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "These functions shall not return an error code of [EINTR].",
        ("success-codes",),
        checked=_y2003("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "The pthread_getspecific() function shall return the value currently bound to the specified key on behalf "
        "of the calling thread.",
        ("get-returns-own-value", "values-per-thread", "values-persist"),
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        GETSPECIFIC_PAGE,
        "Both pthread_getspecific() and pthread_setspecific() may be called from a thread-specific data destructor "
        "function.",
        ("dtor-calls-defined",),
        checked=_y2017("pthread_getspecific"),
    ),
    Row(
        KEY_DELETE_PAGE,
        "The pthread_key_delete() function shall be callable from within destructor functions.",
        ("delete-in-dtor",),
        checked=_y2017("pthread_key_delete"),
    ),
    Row(
        CANCEL_SECTION,
        "When a cancellation request is acted upon, or when a thread calls pthread_exit(), the thread first disables "
        "cancellation by setting its cancelability state to PTHREAD_CANCEL_DISABLE and its cancelability type to "
        "PTHREAD_CANCEL_DEFERRED. The cancelability state shall remain set to PTHREAD_CANCEL_DISABLE until the "
        "thread has terminated.",
        ("dtor-cancel-disabled",),
        checked=_SECTION,
    ),
    Row(
        TESTCANCEL_PAGE,
        "The pthread_testcancel() function shall create a cancellation point in the calling thread. The "
        "pthread_testcancel() function shall have no effect if cancelability is disabled.",
        ("no-cancel-in-exit",),
        checked=_TRANSCRIBED_2008.format(where="pthread_setcancelstate (which defines pthread_testcancel)"),
    ),
)
