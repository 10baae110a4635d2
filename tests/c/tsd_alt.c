/* An alternative thread-specific-data implementation and its mutant zoo, loaded with LD_PRELOAD
 * (or linked) in front of glibc.
 *
 * It has its own key table, per-thread blocks of cells (attached on a thread's first use,
 * recycled through a pool when the thread exits, as thread descriptors are), and its own
 * destructor loop: glibc calls one hook (a real glibc key, whose value is the thread's block)
 * at thread exit, and the hook runs this library's passes with cancellation disabled, as musl's
 * __pthread_exit does (the thread is terminating).  Built without switches it conforms.  The
 * lifecycle switches interpose pthread_exit, pthread_join or exit()/fork() hooks, as an
 * implementation owning its threads would behave.
 * tsdcheck/checker/zoo.py is the catalogue (bug class, citation, property expected to catch it).
 *
 * Conformant but different (must never be flagged):
 *   ORDER_DESC        scan the table from the top (another allowed order)
 *   GO_ON             keep making passes while values remain, no cap (POSIX allows it; the
 *                     "at most N" readings do not, so under them this is the bug "no cap")
 *   RESTART           after each call, restart the scan at the lowest key not yet called in the pass
 *   NEXT_PASS         a pass calls only the keys due at its start; later values wait for the next
 *   CHECK_LIVE        get/set validate the key: EINVAL (set) and NULL (get) for non-live keys
 *   KEY_GEN           key values carry a generation, so a value is never handed out twice
 *   FORK_RECLAIM      the child of fork reclaims the vanished threads' blocks into the pool,
 *                     without destructors (glibc __reclaim_stacks after BZ #4938)
 *   SEQ_RECHECK       the exit loop reads a destructor without the lock and re-checks the slot's
 *                     sequence number before calling it (bionic's serialisation, not a lock)
 *   TSD_KEYS=n        a table of n keys, which sysconf(_SC_THREAD_KEYS_MAX) reports (e.g. 128,
 *                     POSIX's minimum, as musl has: the generator must reach its features there too)
 * Bugs (one each):
 *   BUG_NO_CLEAR      call the destructor before clearing the value
 *   BUG_EXTRA_PASS    one pass more than PTHREAD_DESTRUCTOR_ITERATIONS
 *   BUG_SHORT_PASS    one pass fewer than PTHREAD_DESTRUCTOR_ITERATIONS
 *   BUG_NO_RESCAN     after the first pass the block is wiped: values set by destructors are lost
 *   BUG_CAP_PER_KEY   the cap counts calls per key, not passes
 *   BUG_EAGAIN_EARLY  refuse the last key
 *   BUG_EAGAIN_NEVER  the table is larger than the advertised PTHREAD_KEYS_MAX and fills up
 *   BUG_STALE         delete does not invalidate per-thread values: a reused slot shows them,
 *                     and hands them to the new key's destructor
 *   BUG_DUP_KEY       a slot is free when its destructor is NULL: keys without one are handed out again
 *   BUG_KEY0_INVALID  key value 0 is handed out but treated as "no key" by get/set/delete
 *   BUG_DELETE_CALLS  pthread_key_delete calls the destructor of the calling thread's value
 *   BUG_SET_CALLS     pthread_setspecific calls the destructor of the value it replaces
 *   BUG_DTOR_AFTER_DELETE  a cell remembers its destructor at set time: deleted keys still get calls
 *   BUG_DTOR_NULL     destructors are called for NULL values too
 *   BUG_STALE_ARG     a pass snapshots and clears every value first, then calls with the snapshot
 *   BUG_NEW_IN_DTOR   the scan bound is fixed when the loop starts: keys created by destructors are skipped
 *   BUG_SHARED        one block for the whole process: values are shared between threads
 *   BUG_LEFTOVERS     a recycled block is not cleared: a new thread sees an exited thread's values
 * Lifecycle bugs:
 *   BUG_CANCEL_IN_DTOR    cancellation stays enabled in the loop: one acted on inside a destructor
 *                         unwinds out of it and the loop starts again from pass 1 (glibc 2.36)
 *   BUG_DTORS_BEFORE_CLEANUP  pthread_exit runs the destructors first, then the cleanup handlers
 *   BUG_EXIT_NO_DTORS     pthread_exit drops the thread's values without calling destructors
 *   BUG_MAIN_EXIT_ENDS    pthread_exit in the main thread is exit(): the process ends at once
 *   BUG_DTORS_AT_EXIT     exit() (and return from main) runs the calling thread's destructors
 *   BUG_JOINER_DTORS      the exiting thread leaves its values to pthread_join, whose caller runs
 *                         the destructors (in the wrong thread; never for detached threads or main)
 *   BUG_FORK_DTORS        the child of fork runs the vanished threads' destructors
 * Races (they show only when threads run at the same time; a yield widens each window):
 *   BUG_RACE_DTOR_REREAD  the exit loop re-reads the destructor pointer without the lock after
 *                         checking it: a concurrent delete makes it call through NULL (Z3)
 *   BUG_RACE_CREATE_SCAN  create reads its scan start outside the lock; the wrap-around stop
 *                         then fires early, a spurious EAGAIN below the limit (Z4)
 *   BUG_RACE_NO_ATFORK    no atfork handling of the table lock: a fork while another thread is
 *                         inside create or delete leaves the child's lock held forever (Z5a)
 *   BUG_RACE_DELETE_CLEAR delete clears every thread's value for the slot (musl's invalidation, no
 *                         sequence check) without waiting for exit loops; a loop that took a value
 *                         then calls the slot's destructor after delete returned: through NULL,
 *                         or the key re-created in the slot (Z3)
 * The conformant loop reads a destructor under the table lock and calls it after unlocking.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TSD_KEYS
#define KEYS TSD_KEYS /* a smaller table, reported by sysconf (see below) */
#else
#define KEYS PTHREAD_KEYS_MAX
#endif
#ifdef BUG_EAGAIN_NEVER
#define SLOTS (2 * KEYS)
#else
#define SLOTS KEYS
#endif
#ifdef BUG_EAGAIN_EARLY
#define USABLE (SLOTS - 1)
#else
#define USABLE SLOTS
#endif
#if defined(BUG_EXTRA_PASS)
#define PASSES (PTHREAD_DESTRUCTOR_ITERATIONS + 1)
#elif defined(BUG_SHORT_PASS)
#define PASSES (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define PASSES PTHREAD_DESTRUCTOR_ITERATIONS
#endif

typedef void (*dtor_fn)(void *);

struct slot {
    unsigned seq; /* odd: in use; bumped by create and by delete */
    dtor_fn dtor;
};
struct cell {
    unsigned seq; /* the slot's seq when the value was set: a value of a deleted key is ignored */
    void *value;
#ifdef BUG_DTOR_AFTER_DELETE
    dtor_fn dtor;
#endif
};
struct block {
    struct block *next; /* in the pool, or in the list of attached blocks */
    pthread_t owner;    /* the thread it is attached to */
    int orphan;         /* BUG_JOINER_DTORS: its thread has ended, the destructors have not run */
    struct cell cell[SLOTS];
};

static struct slot slots[SLOTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *pool;
static struct block *attached; /* every block attached to a thread (of this process) */
#ifdef BUG_SHARED
static struct block *mine;
#else
static __thread struct block *mine;
#endif
static __thread int hooked;
static __thread int calling; /* inside a destructor call made by this library */
static pthread_key_t exit_hook;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void run_destructors(void *arg);

#ifdef TSD_KEYS
/* The table's size is the limit a program sees. */
long sysconf(int name) {
    long (*real_sysconf)(int) = dlsym(RTLD_NEXT, "sysconf");
    return name == _SC_THREAD_KEYS_MAX ? KEYS : real_sysconf(name);
}
#endif

static void make_hook(void) {
    int (*real_create)(pthread_key_t *, dtor_fn) = dlsym(RTLD_NEXT, "pthread_key_create");
    real_create(&exit_hook, run_destructors);
}

/* Point glibc's hook key at `b` (NULL: no destructor loop at this thread's exit). */
static void arm(struct block *b) {
    int (*real_set)(pthread_key_t, const void *) = dlsym(RTLD_NEXT, "pthread_setspecific");
    pthread_once(&hook_once, make_hook);
    real_set(exit_hook, b);
}

/* Take `b` off the list of attached blocks (with table_lock held). */
static void unlink_block(struct block *b) {
    for (struct block **p = &attached; *p; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
}

/* Back to the pool: the thread it was attached to is gone. */
__attribute__((unused)) static void release(struct block *b) {
    pthread_mutex_lock(&table_lock);
    unlink_block(b);
    b->next = pool;
    pool = b;
    pthread_mutex_unlock(&table_lock);
}

/* The calling thread's block, attached on first use: from the pool, or new. */
static struct block *attach(void) {
    if (!mine) {
        pthread_mutex_lock(&table_lock);
        struct block *b = pool;
        if (b) pool = b->next;
        pthread_mutex_unlock(&table_lock);
        if (b) {
#ifndef BUG_LEFTOVERS
            memset(b->cell, 0, sizeof b->cell);
#endif
        } else {
            b = calloc(1, sizeof *b);
            if (!b) return NULL;
        }
        b->owner = pthread_self();
        b->orphan = 0;
        pthread_mutex_lock(&table_lock);
        b->next = attached;
        attached = b;
        pthread_mutex_unlock(&table_lock);
        mine = b;
    }
    if (!hooked) {
        arm(mine);
        hooked = 1;
    }
    return mine;
}

static int in_use(unsigned s) {
#ifdef BUG_DUP_KEY
    return slots[s].dtor != NULL;
#else
    return slots[s].seq & 1;
#endif
}

static pthread_key_t key_of(unsigned s) {
#ifdef KEY_GEN
    return s + SLOTS * (slots[s].seq >> 1);
#else
    return s;
#endif
}

/* The slot a key value names if that key is live, else SLOTS. */
static unsigned live_slot(pthread_key_t k) {
#ifdef BUG_KEY0_INVALID
    if (k == 0) return SLOTS;
#endif
    unsigned s = k % SLOTS;
    return in_use(s) && key_of(s) == k ? s : SLOTS;
}

/* The value a cell holds for slot s's current key. */
static void *current(const struct cell *c, unsigned s) {
#if defined(BUG_STALE) || defined(BUG_RACE_DELETE_CLEAR)
    (void)s; /* BUG_RACE_DELETE_CLEAR: delete clears the values instead */
    return c->value;
#else
    return c->seq == slots[s].seq ? c->value : NULL;
#endif
}

static dtor_fn dtor_of(const struct cell *c, unsigned s) {
#ifdef BUG_DTOR_AFTER_DELETE
    (void)s;
    return c->value ? c->dtor : NULL;
#else
    return current(c, s) ? slots[s].dtor : NULL;
#endif
}

/* Whether slot s's destructor is due in block b (the value is current, non-NULL, with a destructor). */
static int due(struct block *b, unsigned s) { return dtor_of(&b->cell[s], s) != NULL; }

/* Whether this loop visits slot s in a scan (the buggy ones visit more). */
static int visit(struct block *b, unsigned s) {
#ifdef BUG_DTOR_NULL
    (void)b;
    return in_use(s) && slots[s].dtor != NULL;
#else
    return due(b, s);
#endif
}

/* Clear the value, then call its destructor. */
/* The destructor to call for slot s and the value to pass it (*v), read together so that a
 * concurrent delete cannot tear them: NULL if the key was deleted since the loop saw its value
 * due.  (A value read after the destructor, outside the lock, may already be the NULL a delete
 * left: a call with NULL.) */
__attribute__((unused)) static dtor_fn dtor_for_call(const struct cell *c, unsigned s, void **v) {
#if defined(BUG_RACE_DTOR_REREAD)
    *v = current(c, s);
    sched_yield(); /* the window between the check and the unlocked re-read */
    return __atomic_load_n(&slots[s].dtor, __ATOMIC_RELAXED); /* read again, not the value the check saw */
#elif defined(SEQ_RECHECK)
    unsigned seq = __atomic_load_n(&slots[s].seq, __ATOMIC_ACQUIRE);
    dtor_fn dtor = __atomic_load_n(&slots[s].dtor, __ATOMIC_ACQUIRE);
    *v = c->value;
    sched_yield();
    return __atomic_load_n(&slots[s].seq, __ATOMIC_ACQUIRE) == seq && c->seq == seq ? dtor : NULL;
#else
    pthread_mutex_lock(&table_lock);
    dtor_fn dtor = dtor_of(c, s);
    *v = current(c, s);
    pthread_mutex_unlock(&table_lock);
    return dtor;
#endif
}

__attribute__((unused)) static void call(struct block *b, unsigned s) {
    struct cell *c = &b->cell[s];
#ifdef BUG_RACE_DELETE_CLEAR
    /* musl's loop before 84d061d5/805288929f: a non-NULL value was due, so take it and call the
     * slot's destructor; delete's clearing of the values does not wait for the loop. */
    void *taken = c->value;
    sched_yield(); /* the window between taking the value and reading its destructor */
    dtor_fn dtor = __atomic_load_n(&slots[s].dtor, __ATOMIC_RELAXED); /* NULL, or a new key's */
    c->value = NULL;
    calling++;
    dtor(taken);
    calling--;
#else
    void *v = NULL;
    dtor_fn dtor = dtor_for_call(c, s, &v);
#if !defined(BUG_RACE_DTOR_REREAD) && !defined(BUG_DTOR_NULL) && !defined(BUG_DTOR_AFTER_DELETE)
    if (!dtor) return; /* deleted meanwhile: no longer due */
#endif
#ifdef BUG_DTOR_AFTER_DELETE
    v = c->value;
#endif
#ifdef BUG_DTOR_NULL
    if (!dtor) dtor = slots[s].dtor;
#endif
    calling++;
#ifdef BUG_NO_CLEAR
    dtor(v);
    if (c->value == v) c->value = NULL;
#else
    c->value = NULL;
    dtor(v);
#endif
    calling--;
#endif
}

static unsigned slot_at(unsigned n, unsigned top) {
#ifdef ORDER_DESC
    return top - 1 - n;
#else
    (void)top;
    return n;
#endif
}

/* One pass over the slots below top; count[s] is how often slot s's destructor was called. */
static void pass_over(struct block *b, unsigned top, unsigned char *count) {
#if defined(RESTART)
    unsigned char called[SLOTS] = {0};
    for (;;) {
        unsigned n = 0;
        while (n < top && (called[slot_at(n, top)] || !visit(b, slot_at(n, top)))) n++;
        if (n == top) break;
        called[slot_at(n, top)] = 1;
        call(b, slot_at(n, top));
    }
#elif defined(NEXT_PASS)
    unsigned char at_start[SLOTS];
    for (unsigned s = 0; s < top; s++) at_start[s] = visit(b, s);
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
        if (at_start[s] && visit(b, s)) call(b, s);
    }
#elif defined(BUG_STALE_ARG)
    void *snapshot[SLOTS];
    dtor_fn dtors[SLOTS];
    for (unsigned s = 0; s < top; s++) {
        dtors[s] = visit(b, s) ? dtor_of(&b->cell[s], s) : NULL;
        snapshot[s] = b->cell[s].value;
        if (dtors[s]) b->cell[s].value = NULL;
    }
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
        if (dtors[s]) dtors[s](snapshot[s]);
    }
#else
    for (unsigned n = 0; n < top; n++) {
        unsigned s = slot_at(n, top);
#ifdef BUG_CAP_PER_KEY
        if (count[s] >= PASSES) continue;
#endif
        if (visit(b, s)) call(b, s), count[s]++;
    }
#endif
    (void)count;
}

/* Whether another pass is needed: a due value remains (for a key not yet at its cap). */
static int any_due(struct block *b, unsigned top, const unsigned char *count) {
    for (unsigned s = 0; s < top; s++) {
#ifdef BUG_CAP_PER_KEY
        if (count[s] >= PASSES) continue;
#endif
        if (due(b, s)) return 1;
    }
    (void)count;
    return 0;
}

/* The destructor loop over block b, in the calling thread. */
static void destroy(struct block *b) {
    unsigned char count[SLOTS] = {0};
    unsigned top = SLOTS;
#ifdef BUG_NEW_IN_DTOR
    pthread_mutex_lock(&table_lock);
    while (top > 0 && !in_use(top - 1)) top--;
    pthread_mutex_unlock(&table_lock);
#endif
    for (int pass = 1;; pass++) {
        pass_over(b, top, count);
#ifdef BUG_NO_RESCAN
        memset(b->cell, 0, sizeof b->cell);
#endif
        if (!any_due(b, top, count)) break;
#if !defined(GO_ON) && !defined(BUG_CAP_PER_KEY)
        if (pass >= PASSES) break;
#endif
    }
}

/* The destructor loop run by a thread that is not b's (joiner, fork child): a cancellation
 * requested by a destructor must not end the caller in the middle of it. */
__attribute__((unused)) static void destroy_elsewhere(struct block *b) {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    destroy(b);
    pthread_setcancelstate(old, NULL);
}

#ifdef BUG_CANCEL_IN_DTOR
/* A cancellation acted on inside a destructor unwinds out of the loop; glibc's start_thread
 * then runs its TSD destructors again from the start, which calls the hook once more. */
static void rearm(void *b) {
    calling = 0;
    arm(b);
}
#endif

/* glibc's destructor for the hook key: this library's destructor loop, then the block is recycled. */
static void run_destructors(void *arg) {
    struct block *b = arg;
#if defined(BUG_CANCEL_IN_DTOR)
    pthread_cleanup_push(rearm, b);
    destroy(b);
    pthread_cleanup_pop(0);
#elif defined(BUG_JOINER_DTORS)
    b->orphan = 1; /* pthread_join runs them */
    hooked = 0;
    mine = NULL;
    return;
#else
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old); /* terminating: never restored */
    destroy(b);
#endif
    hooked = 0;
#ifndef BUG_SHARED
    mine = NULL;
    release(b);
#endif
}

/* Run the calling thread's destructor loop now, instead of at its end. */
__attribute__((unused)) static void run_now(void) {
    if (mine && hooked) {
        arm(NULL);
        run_destructors(mine);
    }
}

#if defined(BUG_DTORS_BEFORE_CLEANUP) || defined(BUG_EXIT_NO_DTORS) || defined(BUG_MAIN_EXIT_ENDS)
static pthread_t main_thread;
__attribute__((constructor)) static void note_main(void) { main_thread = pthread_self(); }

void pthread_exit(void *ret) {
    void (*real_exit)(void *) = dlsym(RTLD_NEXT, "pthread_exit");
#if defined(BUG_DTORS_BEFORE_CLEANUP)
    run_now(); /* the cleanup handlers run after, in real_exit */
#elif defined(BUG_EXIT_NO_DTORS)
    if (mine && hooked) {
        struct block *b = mine;
        arm(NULL);
        hooked = 0;
        mine = NULL;
        release(b);
    }
#else
    if (pthread_equal(pthread_self(), main_thread)) exit((int)(intptr_t)ret);
#endif
    real_exit(ret);
    abort();
}
#endif

#ifdef BUG_DTORS_AT_EXIT
__attribute__((constructor)) static void at_exit_too(void) { atexit(run_now); }
#endif

#ifdef BUG_JOINER_DTORS
int pthread_join(pthread_t t, void **ret) {
    int (*real_join)(pthread_t, void **) = dlsym(RTLD_NEXT, "pthread_join");
    int rc = real_join(t, ret);
    if (rc) return rc;
    pthread_mutex_lock(&table_lock);
    struct block *b = attached;
    while (b && !(b->orphan && pthread_equal(b->owner, t))) b = b->next;
    pthread_mutex_unlock(&table_lock);
    if (b) {
        destroy_elsewhere(b);
        release(b);
    }
    return rc;
}
#endif

#if defined(FORK_RECLAIM) || defined(BUG_FORK_DTORS)
/* In the child of fork: the blocks of the threads that did not survive go back to the pool. */
static void reclaim_in_child(void) {
    for (;;) {
        pthread_mutex_lock(&table_lock);
        struct block *b = attached;
        while (b && pthread_equal(b->owner, pthread_self())) b = b->next;
        pthread_mutex_unlock(&table_lock);
        if (!b) return;
#ifdef BUG_FORK_DTORS
        destroy_elsewhere(b);
#endif
        release(b);
    }
}
#endif

/* The table lock across fork: taken before, released after in both processes, so the child of a
 * fork from a multi-threaded process finds it free (glibc and musl >= 1.2.2 promise the child the
 * whole library).  BUG_RACE_NO_ATFORK leaves it out. */
#ifndef BUG_RACE_NO_ATFORK
static void table_lock_take(void) { pthread_mutex_lock(&table_lock); }
static void table_lock_give(void) { pthread_mutex_unlock(&table_lock); }
#endif

static void in_fork_child(void) {
#ifndef BUG_RACE_NO_ATFORK
    table_lock_give();
#endif
#if defined(FORK_RECLAIM) || defined(BUG_FORK_DTORS)
    reclaim_in_child();
#endif
}

__attribute__((constructor)) static void at_fork(void) {
#ifdef BUG_RACE_NO_ATFORK
    pthread_atfork(NULL, NULL, in_fork_child);
#else
    pthread_atfork(table_lock_take, table_lock_give, in_fork_child);
#endif
}

#ifdef BUG_RACE_CREATE_SCAN
static unsigned next_slot; /* where the last create stopped */

int pthread_key_create(pthread_key_t *key, dtor_fn dtor) {
    pthread_once(&hook_once, make_hook);
    unsigned j = __atomic_load_n(&next_slot, __ATOMIC_RELAXED); /* read outside the lock */
    sched_yield();
    pthread_mutex_lock(&table_lock);
    int used = 0;
    for (unsigned s = 0; s < SLOTS; s++) used += in_use(s);
    do {
        if (used < USABLE && !in_use(j)) {
            slots[j].seq++;
            slots[j].dtor = dtor;
            *key = key_of(j);
            next_slot = (j + 1) % SLOTS;
            pthread_mutex_unlock(&table_lock);
            return 0;
        }
    } while ((j = (j + 1) % SLOTS) != next_slot);
    pthread_mutex_unlock(&table_lock);
    return EAGAIN;
}
#else
int pthread_key_create(pthread_key_t *key, dtor_fn dtor) {
    pthread_once(&hook_once, make_hook);
    pthread_mutex_lock(&table_lock);
#ifdef BUG_RACE_NO_ATFORK
    sched_yield(); /* the window in which a fork copies the lock held */
#endif
    int used = 0;
    for (unsigned s = 0; s < SLOTS; s++) used += in_use(s);
    for (unsigned s = 0; s < SLOTS && used < USABLE; s++) {
        if (in_use(s)) continue;
        slots[s].seq++;
        slots[s].dtor = dtor;
        *key = key_of(s);
        pthread_mutex_unlock(&table_lock);
        return 0;
    }
    pthread_mutex_unlock(&table_lock);
    return EAGAIN;
}
#endif

int pthread_key_delete(pthread_key_t k) {
#ifdef BUG_DELETE_CALLS
    unsigned d = live_slot(k);
    if (d < SLOTS && mine && due(mine, d) && !calling) call(mine, d); /* not re-entered */
#endif
    pthread_mutex_lock(&table_lock);
    int rc = EINVAL;
    unsigned s = live_slot(k);
    if (s < SLOTS) {
        slots[s].seq++;
        slots[s].dtor = NULL;
#ifdef BUG_RACE_DELETE_CLEAR
        for (struct block *b = attached; b; b = b->next) b->cell[s].value = NULL;
#endif
        rc = 0;
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void *pthread_getspecific(pthread_key_t k) {
#ifdef CHECK_LIVE
    unsigned s = live_slot(k);
#elif defined(BUG_KEY0_INVALID)
    unsigned s = k == 0 ? SLOTS : k % SLOTS;
#else
    unsigned s = k % SLOTS;
#endif
    struct block *b = attach();
    return s < SLOTS && b ? current(&b->cell[s], s) : NULL;
}

int pthread_setspecific(pthread_key_t k, const void *value) {
#ifdef CHECK_LIVE
    unsigned s = live_slot(k);
    if (s == SLOTS) return EINVAL;
#elif defined(BUG_KEY0_INVALID)
    if (k == 0) return EINVAL;
    unsigned s = k % SLOTS;
#else
    unsigned s = k % SLOTS; /* no validation: a non-live key is undefined behaviour */
#endif
    struct block *b = attach();
    if (!b) return ENOMEM;
    struct cell *c = &b->cell[s];
#ifdef BUG_SET_CALLS
    void *old = current(c, s);
    dtor_fn old_dtor = dtor_of(c, s);
#endif
    c->seq = slots[s].seq;
    c->value = (void *)value;
#ifdef BUG_DTOR_AFTER_DELETE
    c->dtor = slots[s].dtor;
#endif
#ifdef BUG_SET_CALLS
    if (old_dtor && old != value && !calling) { /* not re-entered */
        calling++;
        old_dtor(old);
        calling--;
    }
#endif
    return 0;
}
