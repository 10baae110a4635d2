/* mytsd.c: your own thread-specific data, loaded in front of the C library with LD_PRELOAD.
 * Written by `tsdcheck init-preload`; replace the table below with your implementation's
 * code, keep the three hooks, then: make && make check.
 *
 * The hooks a preloaded TSD implementation needs to be checked:
 *  1. the four pthread_key and pthread_[gs]etspecific functions, interposed (below);
 *  2. thread exit: your destructor passes must run when a thread returns, calls pthread_exit
 *     or is cancelled.  This file borrows one real key of the C library (found with dlsym
 *     RTLD_NEXT): a thread that sets a value arms it, and the C library calls run_passes at
 *     that thread's exit.  A library owning its threads calls run_passes from its own exit path;
 *  3. sysconf: the checker asks sysconf(_SC_THREAD_KEYS_MAX) and
 *     sysconf(_SC_THREAD_DESTRUCTOR_ITERATIONS) for the limits to hold you to, so they must
 *     answer with your limits, not the C library's (or pass --keys-max/--iterations).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <unistd.h>

#define KEYS 128      /* PTHREAD_KEYS_MAX: POSIX asks for at least 128 */
#define ITERATIONS 4  /* PTHREAD_DESTRUCTOR_ITERATIONS: at least 4 */

typedef void (*dtor_fn)(void *);
struct slot { int used; unsigned seq; dtor_fn dtor; };
struct cell { unsigned seq; void *value; }; /* a value counts only while seq matches the slot's */

static struct slot table[KEYS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct cell cells[KEYS];
static __thread int exiting; /* set once the passes start: a value set by a destructor must not re-arm */
static pthread_key_t exit_hook;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;
static int (*real_set)(pthread_key_t, const void *);

static void run_passes(void *unused);

/* Hook 2: one key of the C library, whose destructor runs this library's passes. */
static void make_hook(void) {
    int (*real_create)(pthread_key_t *, dtor_fn) = dlsym(RTLD_NEXT, "pthread_key_create");
    real_set = dlsym(RTLD_NEXT, "pthread_setspecific");
    real_create(&exit_hook, run_passes);
}

static void arm_hook(void) {
    pthread_once(&hook_once, make_hook);
    if (!exiting) real_set(exit_hook, cells); /* non-NULL: the C library calls run_passes at exit */
}

/* Up to ITERATIONS passes; each clears a value before calling its destructor with it. */
static void run_passes(void *unused) {
    int state;
    (void)unused;
    exiting = 1;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state); /* the thread is terminating */
    for (int pass = 0; pass < ITERATIONS; pass++) {
        int called = 0;
        for (int k = 0; k < KEYS; k++) {
            pthread_mutex_lock(&lock);
            dtor_fn dtor = table[k].used ? table[k].dtor : NULL;
            void *value = cells[k].seq == table[k].seq ? cells[k].value : NULL;
            pthread_mutex_unlock(&lock);
            if (dtor == NULL || value == NULL) continue;
            cells[k].value = NULL;
            dtor(value);
            called = 1;
        }
        if (!called) break;
    }
}

int pthread_key_create(pthread_key_t *key, dtor_fn dtor) {
    pthread_mutex_lock(&lock);
    for (int k = 0; k < KEYS; k++) {
        if (!table[k].used) {
            table[k].used = 1;
            table[k].seq++; /* every thread's old value for this slot stops counting */
            table[k].dtor = dtor;
            *key = (pthread_key_t)k;
            pthread_mutex_unlock(&lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return EAGAIN;
}

int pthread_key_delete(pthread_key_t key) {
    int rc = EINVAL;
    pthread_mutex_lock(&lock);
    if (key < KEYS && table[key].used) {
        table[key].used = 0; /* no destructor is called */
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void *pthread_getspecific(pthread_key_t key) {
    if (key >= KEYS) return NULL;
    return cells[key].seq == table[key].seq ? cells[key].value : NULL;
}

int pthread_setspecific(pthread_key_t key, const void *value) {
    if (key >= KEYS || !table[key].used) return EINVAL;
    arm_hook();
    cells[key].seq = table[key].seq;
    cells[key].value = (void *)value;
    return 0;
}

/* Hook 3: the limits, as this library has them. */
long sysconf(int name) {
    long (*real_sysconf)(int) = dlsym(RTLD_NEXT, "sysconf");
    if (name == _SC_THREAD_KEYS_MAX) return KEYS;
    if (name == _SC_THREAD_DESTRUCTOR_ITERATIONS) return ITERATIONS;
    return real_sysconf(name);
}

/* fork() while another thread holds the table lock must not leave the child's lock held. */
static void take(void) { pthread_mutex_lock(&lock); }
static void give(void) { pthread_mutex_unlock(&lock); }
__attribute__((constructor)) static void at_fork(void) { pthread_atfork(take, give, give); }
