/* tsdcheck POSIX driver: executes trace operations on the pthread TSD implementation it is
 * linked against (or one interposed with LD_PRELOAD).  Only <pthread.h> and the C library
 * are used, so it builds with gcc, musl-gcc and diet gcc.
 *
 * Process model: a fork server.  The server forks a child that serves one test case over the
 * same pipes (it says "P <pid>", then skips what it reads up to the checker's "N": commands sent
 * to the last case after it ended), so every case starts with a fresh key table; when the child
 * ends the server reports "W <status>" and forks the next one at once, without being asked.
 * The server never creates keys or threads, and never reads stdin.
 *
 * Case protocol, one command a line (names are trace indices: k<i>, t<i>, v<i>):
 *   S t                 spawn thread t                   -> R rc
 *   C k -               create k without destructor      -> K rc raw
 *   C k n op...         create k with a program of n instructions:
 *                       g | r v times | s key v | d key | n v
 *   D k                 delete k                         -> R rc
 *   T t k v             set k to v in thread t           -> R rc
 *   G t k               get k in thread t                -> V value
 *   S t d               spawn thread t (d=1: detached)   -> R rc
 *   X t | Y t           t returns | calls pthread_exit   -> R rc status [last]
 *   Z t a               cancel t (a=1: asynchronously)   -> R rc status [last]
 *                       status: returned | canceled | - (detached: observed without a join);
 *                       "last": no thread is left, so the process now ends (the server says W)
 *   U t h | O t e       t pushes cleanup handler h | pops one (e=1: runs it) -> R 0
 *   K t                 t forks; the case goes on in the child, whose one thread is t -> R rc
 *   E x | E r           exit(0) | return from main (the server then says W)
 *   F                   create keys until refused        -> F rc count raw...
 *   B j s n l           a parallel block (POSIX threads only): jitter j, seed s, the next name
 *                       for keys made in destructors n, then l lanes, each "L t m" and m
 *                       commands among C D T G X Y for thread t.  The lanes start together at a
 *                       barrier; destructor calls stream as "l t i c ..." (thread t, its
 *                       operation i); then one line per operation "b t i invoked returned
 *                       <reply>" (positions in one sequence of events) and "b end".  Lane 0
 *                       is the main thread's one "K 0": it forks while the others run, and the
 *                       case goes on in the child, which reports the block as it saw it
 *                       ("b t i invoked - pending" for operations still running at the fork).
 *   Q                   end the case
 * Destructor calls and cleanup handlers are reported as they happen, before the reply of the
 * operation during which they ran:  c key arg effect...   (effects: g=val r=rc s<k>=rc
 * d<k>=rc n<k>=rc:raw cancel=returned|acted)   and   h handler.
 * A value is its index (0 = NULL) or ?0x<address> for a pointer the trace never stored.
 * The greeting "H keys_max iterations features" lists the thread operations the API layer has:
 * x pthread_exit, m the main thread's exit, c cancellation and cleanup handlers, d detached
 * threads, f fork, e process end, p parallel blocks.  -DTSD_NO_MAIN_EXIT leaves out m (see registry.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* The API under test.  By default POSIX keys and threads.  With -DTSD_C11 the C11
 * <threads.h> API: tss_* for the keys and thrd_create/thrd_join for the threads (C11 has no
 * errno codes: a refused tss_create reports EAGAIN, a refused tss_set EINVAL;
 * TSS_DTOR_ITERATIONS replaces PTHREAD_DESTRUCTOR_ITERATIONS).  With -DTSD_PTH, GNU Pth:
 * pth_key_* and user-level pth threads, whose calls answer TRUE/FALSE and set errno, with
 * PTH_KEY_MAX and PTH_DESTRUCTOR_ITERATIONS as the limits.  The locks only sequence the
 * driver: pthread ones, except under Pth, where only Pth's own may block. */
static void *worker_main(void *arg);
#define MAX_THREADS_API 64
#ifdef TSD_PTH
#include <pth.h>
typedef pth_key_t key_type;
typedef pth_t thread_type;
typedef pth_mutex_t mutex_type;
typedef pth_cond_t cond_type;
#define MUTEX_INIT PTH_MUTEX_INIT
#define COND_INIT PTH_COND_INIT
static int key_create(pth_key_t *k, void (*dtor)(void *)) { return pth_key_create(k, dtor) ? 0 : errno; }
static int key_delete(pth_key_t k) { return pth_key_delete(k) ? 0 : errno; }
static void *key_get(pth_key_t k) { return pth_key_getdata(k); }
static int key_set(pth_key_t k, void *v) { return pth_key_setdata(k, v) ? 0 : errno; }
static int thread_start(pth_t *t, void *arg) {
    *t = pth_spawn(PTH_ATTR_DEFAULT, worker_main, arg);
    return *t ? 0 : errno;
}
static int thread_join(pth_t t, int *canceled) {
    void *ret = NULL;
    int rc = pth_join(t, &ret) ? 0 : errno;
    *canceled = ret == PTH_CANCELED;
    return rc;
}
static void thread_exit(void) { pth_exit(NULL); }
static pth_t thread_self(void) { return pth_self(); }
static int thread_start_fn(pth_t *t, void *(*fn)(void *), void *arg) {
    *t = pth_spawn(PTH_ATTR_DEFAULT, fn, arg);
    return *t ? 0 : errno;
}
static int thread_detach(pth_t t) { (void)t; return ENOSYS; }
#define FEATURES "x"
static void lock_acquire(pth_mutex_t *m) { pth_mutex_acquire(m, FALSE, NULL); }
static void lock_release(pth_mutex_t *m) { pth_mutex_release(m); }
static void cond_init(pth_cond_t *c) { pth_cond_init(c); }
static void cond_wait(pth_cond_t *c, pth_mutex_t *m) { pth_cond_await(c, m, NULL); }
static void cond_signal(pth_cond_t *c) { pth_cond_notify(c, FALSE); }
static void api_init(void) { pth_init(); }
#else
#include <pthread.h>
typedef pthread_mutex_t mutex_type;
typedef pthread_cond_t cond_type;
#define MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define COND_INIT PTHREAD_COND_INITIALIZER
static void lock_acquire(pthread_mutex_t *m) { pthread_mutex_lock(m); }
static void lock_release(pthread_mutex_t *m) { pthread_mutex_unlock(m); }
static void cond_init(pthread_cond_t *c) { pthread_cond_init(c, NULL); }
static void cond_wait(pthread_cond_t *c, pthread_mutex_t *m) { pthread_cond_wait(c, m); }
static void cond_signal(pthread_cond_t *c) { pthread_cond_signal(c); }
static void api_init(void) {}
#ifdef TSD_C11
#include <threads.h>
typedef tss_t key_type;
typedef thrd_t thread_type;
static int key_create(tss_t *k, void (*dtor)(void *)) { return tss_create(k, dtor) == thrd_success ? 0 : EAGAIN; }
static int key_delete(tss_t k) { tss_delete(k); return 0; }
static void *key_get(tss_t k) { return tss_get(k); }
static int key_set(tss_t k, void *v) { return tss_set(k, v) == thrd_success ? 0 : EINVAL; }
struct c11_start_arg {
    void *(*fn)(void *);
    void *arg;
};
static struct c11_start_arg c11_args[MAX_THREADS_API];
static int c11_start(void *p) {
    struct c11_start_arg *a = p;
    a->fn(a->arg);
    return 0;
}
static int thread_start_fn(thrd_t *t, void *(*fn)(void *), void *arg) {
    static int next;
    struct c11_start_arg *a = &c11_args[next++ % MAX_THREADS_API];
    a->fn = fn;
    a->arg = arg;
    return thrd_create(t, c11_start, a) == thrd_success ? 0 : EAGAIN;
}
static int thread_start(thrd_t *t, void *arg) { return thread_start_fn(t, worker_main, arg); }
static int thread_join(thrd_t t, int *canceled) {
    *canceled = 0;
    return thrd_join(t, NULL) == thrd_success ? 0 : EINVAL;
}
static void thread_exit(void) { thrd_exit(0); }
static thrd_t thread_self(void) { return thrd_current(); }
static int thread_equal(thrd_t a, thrd_t b) { return thrd_equal(a, b); }
static int thread_detach(thrd_t t) { return thrd_detach(t) == thrd_success ? 0 : EINVAL; }
#define HAVE_PARALLEL 1
#define FEATURES "xdmfep"
#else
typedef pthread_key_t key_type;
typedef pthread_t thread_type;
#define key_create pthread_key_create
#define key_delete pthread_key_delete
#define key_get pthread_getspecific
#define key_set pthread_setspecific
static int thread_start_fn(pthread_t *t, void *(*fn)(void *), void *arg) { return pthread_create(t, NULL, fn, arg); }
static int thread_start(pthread_t *t, void *arg) { return thread_start_fn(t, worker_main, arg); }
static int thread_join(pthread_t t, int *canceled) {
    void *ret = NULL;
    int rc = pthread_join(t, &ret);
    *canceled = ret == PTHREAD_CANCELED;
    return rc;
}
static void thread_exit(void) { pthread_exit(NULL); }
static pthread_t thread_self(void) { return pthread_self(); }
static int thread_equal(pthread_t a, pthread_t b) { return pthread_equal(a, b); }
static int thread_detach(pthread_t t) { return pthread_detach(t); }
#define HAVE_CANCEL 1
#define HAVE_PARALLEL 1
#define FEATURES "xmcdfep"
#endif
#endif

#define MAX_NAMES 65536
#define MAX_DTORS 256
#define MAX_THREADS MAX_THREADS_API
#define MAX_PROGRAM 8
#define MAX_VALUES 256
#define NO_THREAD (-1)

struct instr {
    char op;
    int a, b;
};

struct dtor_slot {
    int name;
    int len;
    struct instr prog[MAX_PROGRAM];
};

struct worker {
    thread_type thread;
    int running, detached;
    char cmd; /* a command letter of the protocol; 0 idle */
    int key, value, done;
    int rc;
    void *got;
    int holding;  /* holds `lock` (a cancellation acted on in cond_wait re-takes it) */
    int pop_run;  /* execute flag of the pop that ends a push's scope */
    volatile int spinning;
    char task[96]; /* /proc/<pid>/task/<tid>/stat: gone (or a zombie) once the thread has terminated */
    cond_type wake;
    int calls[MAX_DTORS];
};

static key_type keys[MAX_NAMES];
static unsigned char live[MAX_NAMES];
static int next_name;
static struct dtor_slot dtors[MAX_DTORS];
static int ndtors;
static struct worker workers[MAX_THREADS];
static int current = 0;     /* the logical thread running now: only one runs at a time */
static int serving = 0;     /* the trace thread that serves the protocol (NO_THREAD: a helper) */
static int threads_left = 1; /* trace threads running in this process */
static char cells[MAX_VALUES];
static mutex_type lock = MUTEX_INIT;
static cond_type done_cond = COND_INIT;
static long keys_max, iterations;

static const char *errname(int rc) {
    static char buf[16];
    switch (rc) {
    case 0: return "0";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case EINTR: return "EINTR";
    case ENOSYS: return "ENOSYS";
    }
    snprintf(buf, sizeof buf, "%d", rc);
    return buf;
}

static void *value_ptr(int v) { return v ? &cells[v] : NULL; }

static void put_value(FILE *out, const void *p) {
    const char *c = p;
    if (p == NULL) fputs("0", out);
    else if (c > cells && c < cells + MAX_VALUES) fprintf(out, "%d", (int)(c - cells));
    else fprintf(out, "?%#lx", (unsigned long)(uintptr_t)p);
}

/* The driver's own output must not be where a pending cancellation is acted on (write is a
 * cancellation point): cancellation is held off around it, and opened only where the trace
 * asks for a cancellation point. */
#ifdef HAVE_CANCEL
static int hold_cancel(void) {
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}
static void release_cancel(int old) { pthread_setcancelstate(old, NULL); }
#else
static int hold_cancel(void) { return 0; }
static void release_cancel(int old) { (void)old; }
#endif

static void on_dtor(void (*self)(void *), void *arg);
static int dtor_enter(void);
static void dtor_leave(void);

/* 256 distinct destructor functions, one per key with a destructor, so a call names its key. */
#define D1(i) static void dtor_##i(void *v) { on_dtor(dtor_##i, v); }
#define D4(i) D1(i##0) D1(i##1) D1(i##2) D1(i##3)
#define D16(i) D4(i##0) D4(i##1) D4(i##2) D4(i##3)
#define D64(i) D16(i##0) D16(i##1) D16(i##2) D16(i##3)
D64(0) D64(1) D64(2) D64(3)
#define P1(i) dtor_##i,
#define P4(i) P1(i##0) P1(i##1) P1(i##2) P1(i##3)
#define P16(i) P4(i##0) P4(i##1) P4(i##2) P4(i##3)
#define P64(i) P16(i##0) P16(i##1) P16(i##2) P16(i##3)
static void (*const trampolines[MAX_DTORS])(void *) = {P64(0) P64(1) P64(2) P64(3)};

static void fail(const char *why) {
    printf("E %s\n", why);
    fflush(stdout);
    _exit(3);
}

/* Create key `name` with destructor slot `slot` (-1: none); returns rc, fills raw. */
static int create(int name, int slot, unsigned long *raw) {
    if (name >= MAX_NAMES) fail("too many keys for the driver");
    int rc = key_create(&keys[name], slot < 0 ? NULL : trampolines[slot]);
    if (rc == 0) {
        live[name] = 1;
        *raw = (unsigned long)keys[name];
    }
    next_name = name + 1;
    return rc;
}

static int new_slot(int name) {
    if (ndtors >= MAX_DTORS) fail("too many keys with destructors for the driver");
    dtors[ndtors].name = name;
    dtors[ndtors].len = 0;
    return ndtors++;
}

#ifdef HAVE_CANCEL
/* Runs when a cancellation is acted on inside a destructor: the call never returns. */
static void dtor_left(void *unused) {
    (void)unused;
    hold_cancel();
    fputs("acted\n", stdout);
    fflush(stdout);
}

/* The program instruction `cancel`: report the cancelability state the destructor found at
 * entry (`entry`, read by the pthread_setcancelstate that held it off), request cancellation of
 * this thread, then reach a cancellation point with cancellation as the destructor holds it.
 * The driver never enables cancellation here: XSH 2.9.5.3 makes that undefined in a destructor
 * (the state stays PTHREAD_CANCEL_DISABLE until the thread has terminated), so a conformant
 * library is judged by `entry` and by pthread_testcancel having no effect. */
static void cancel_self(int entry) {
    printf(" cancel=%s:", entry == PTHREAD_CANCEL_DISABLE ? "disabled" : "enabled");
    fflush(stdout);
    pthread_cleanup_push(dtor_left, NULL);
    pthread_cancel(pthread_self());
    pthread_testcancel();
    pthread_cleanup_pop(0);
    fputs("returned", stdout);
}
#endif

static void on_dtor(void (*self)(void *), void *arg) {
    int outer = hold_cancel();
    int slot = 0;
    while (trampolines[slot] != self) slot++;
    struct dtor_slot *d = &dtors[slot];
    int k = d->name;
    int n = ++workers[dtor_enter()].calls[slot];
    printf("c %d ", k);
    put_value(stdout, arg);
    for (int i = 0; i < d->len; i++) {
        struct instr *in = &d->prog[i];
        switch (in->op) {
        case 'g':
            fputs(" g=", stdout);
            put_value(stdout, key_get(keys[k]));
            break;
        case 'r':
            if (n <= in->b && live[k]) printf(" r=%s", errname(key_set(keys[k], value_ptr(in->a))));
            break;
        case 's':
            if (n == 1 && in->a < MAX_NAMES && live[in->a])
                printf(" s%d=%s", in->a, errname(key_set(keys[in->a], value_ptr(in->b))));
            break;
        case 'd':
            if (n == 1 && in->a < MAX_NAMES && live[in->a]) {
                live[in->a] = 0;
                printf(" d%d=%s", in->a, errname(key_delete(keys[in->a])));
            }
            break;
        case 'n':
            if (n == 1) {
                int name = next_name, s = new_slot(name);
                unsigned long raw = 0;
                dtors[s].len = 1;
                dtors[s].prog[0].op = 'g';
                int rc = create(name, s, &raw);
                if (rc == 0) rc = key_set(keys[name], value_ptr(in->a));
                if (live[name]) printf(" n%d=%s:%lu", name, errname(rc), raw);
                else printf(" n%d=%s:-1", name, errname(rc));
            }
            break;
#ifdef HAVE_CANCEL
        case 'x':
            if (n == 1) cancel_self(outer);
            break;
#endif
        }
    }
    putchar('\n');
    fflush(stdout);
    dtor_leave();
    /* Cancellation stays held off: restoring PTHREAD_CANCEL_ENABLE inside a destructor would be
     * undefined (XSH 2.9.5.3), and a conformant library had it disabled at entry anyway. */
    (void)outer;
}

#ifdef HAVE_CANCEL
static void run_handler(void *h) {
    int outer = hold_cancel();
    printf("h %d\n", (int)(intptr_t)h);
    fflush(stdout);
    release_cancel(outer);
}

/* The outermost cleanup handler of a worker: a cancellation acted on in cond_wait re-takes
 * the lock, which must not stay held by a dead thread. */
static void drop_lock(void *arg) {
    struct worker *w = arg;
    if (w->holding) {
        w->holding = 0;
        lock_release(&lock);
    }
}

#endif

static void finish(struct worker *w) {
    lock_acquire(&lock);
    w->done = 1;
    cond_signal(&done_cond);
    lock_release(&lock);
}

/* End with the parent: no driver process outlives the checker, however the checker stops
 * (a signal it cannot catch included).  The parent may already have died before prctl took
 * effect, so its pid is compared with the one expected. */
static void die_with_parent(pid_t parent) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    if (getppid() != parent) _exit(3);
}

/* fork(), the child ending with the process that forked it. */
static pid_t fork_tied(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) die_with_parent(parent);
    return pid;
}

static int serve_case(void);
static void forked(int t);

/* The parent of a fork in a test case: the case goes on in the child; end as it ends. */
static _Noreturn void follow_child(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    _exit(WEXITSTATUS(status));
}
static void note_task(struct worker *w);
static int serving_pop_run; /* execute flag of a pop by the serving thread */
#ifdef HAVE_PARALLEL
static int run_lane(struct worker *w);
static void serve_block(char *p);
#endif

/* Serve commands handed to worker w; returns 1 when the thread should return from its start
 * routine, 0 when a pop ends the current push's scope. */
static int worker_loop(struct worker *w) {
    for (;;) {
        if (serving == w - workers) { /* in a child forked by this thread, which now serves */
            int r = serve_case();
            if (r == 2) return 1;
            if (r != 0) _exit(0);
            w->pop_run = serving_pop_run; /* a pop of a handler pushed before the fork */
            return 0;
        }
        lock_acquire(&lock);
        w->holding = 1;
        while (!w->cmd) cond_wait(&w->wake, &lock);
        char cmd = w->cmd;
        w->cmd = 0;
        w->holding = 0;
        lock_release(&lock);
        switch (cmd) {
        case 'X':
            w->pop_run = 0;
            return 1;
        case 'Y':
            thread_exit();
            break;
        case 'O':
            w->pop_run = w->value;
            return 0;
        case 'T':
            w->rc = key_set(keys[w->key], value_ptr(w->value));
            break;
        case 'G':
            w->got = key_get(keys[w->key]);
            break;
#ifdef HAVE_PARALLEL
        case 'L':
            if (run_lane(w)) return 1;
            break;
#endif
#ifdef HAVE_CANCEL
        case 'U': {
            int ret;
            pthread_cleanup_push(run_handler, (void *)(intptr_t)w->value);
            finish(w);
            ret = worker_loop(w);
            pthread_cleanup_pop(w->pop_run);
            if (ret) return ret;
            if (serving == w - workers) {
                printf("R 0\n");
                fflush(stdout);
                continue;
            }
            break;
        }
        case 'A':
            pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
            w->spinning = 1;
            for (;;) {
            }
#endif
        case 'K': {
            fflush(stdout);
            pid_t pid = fork_tied();
            if (pid == 0) {
                forked((int)(w - workers));
                continue; /* serve from here */
            }
            w->rc = pid < 0 ? errno : 0;
            if (pid > 0) follow_child(pid);
            break;
        }
        }
        finish(w);
    }
}

/* Where the kernel shows the calling thread, to see it end without joining it. */
static void note_task(struct worker *w) {
    char link[80];
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    snprintf(w->task, sizeof w->task, "/proc/%s/stat", link);
}

/* Whether the thread has terminated: its task is gone, or (the main thread) a zombie. */
static int terminated(const struct worker *w) {
    char buf[512];
    FILE *f = fopen(w->task, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    return !end || end[1] == 0 || end[2] == 'Z' || end[2] == 'X';
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    note_task(w);
    finish(w); /* started: the spawner may go on */
#ifdef HAVE_CANCEL
    pthread_cleanup_push(drop_lock, w);
    worker_loop(w);
    pthread_cleanup_pop(0);
#else
    worker_loop(w);
#endif
    return NULL; /* the destructors run now, in this thread */
}

/* Hand one command to worker t; wait for it unless the worker ends with it. */
static void signal_worker(int t, char cmd, int key, int value) {
    struct worker *w = &workers[t];
    lock_acquire(&lock);
    w->key = key;
    w->value = value;
    w->done = 0;
    w->cmd = cmd;
    current = t;
    cond_signal(&w->wake);
    lock_release(&lock);
}

static void await_worker(int t) {
    lock_acquire(&lock);
    while (!workers[t].done) cond_wait(&done_cond, &lock);
    current = serving < 0 ? 0 : serving;
    lock_release(&lock);
}

static void hand(int t, char cmd, int key, int value) {
    signal_worker(t, cmd, key, value);
    await_worker(t);
}

static int thread_ok(int t) { return t >= 0 && t < MAX_THREADS && workers[t].running; }

/* The child of a fork by trace thread t: t is its one thread, and it serves the protocol. */
static void become_child(int t) {
    mutex_type fresh = MUTEX_INIT;
    cond_type fresh_cond = COND_INIT;
    lock = fresh;
    done_cond = fresh_cond;
    for (int i = 0; i < MAX_THREADS; i++)
        if (i != t) workers[i].running = 0;
    serving = current = t;
    threads_left = 1;
    note_task(&workers[t]); /* its kernel task is a new one */
}

static void forked(int t) {
    become_child(t);
    printf("R 0\n");
    fflush(stdout);
}

/* Wait until trace thread t has terminated and report it: join it, or for a detached thread
 * watch its kernel task disappear. */
static void reap(int t) {
    struct worker *w = &workers[t];
    const char *status = "-";
    int rc = 0, canceled = 0;
    if (w->detached || t == 0) { /* the main thread cannot be joined everywhere (musl) */
        while (!terminated(w)) sched_yield();
    } else {
        rc = thread_join(w->thread, &canceled);
        status = canceled ? "canceled" : "returned";
    }
    w->running = 0;
    threads_left--;
    printf("R %s %s%s\n", errname(rc), status, threads_left ? "" : " last");
    fflush(stdout);
    if (!threads_left) exit(0); /* the helper is the driver's: the process ends with the last trace thread */
}

static void *helper_main(void *arg) {
    int t = (int)(intptr_t)arg;
    serving = NO_THREAD; /* `current` stays t: its destructors may still be running */
    reap(t);
    serve_case();
    _exit(0);
}

/* The serving thread t ends (how: 'X' return, 'Y' pthread_exit, 'Z' cancel): a helper takes
 * over the protocol and reports t's end.  Returns only for 'X', to unwind to t's start.
 * The last trace thread ends alone: the process ends with it (as if by exit(0)) and the server
 * reports the status.  A helper there would make the process multi-threaded where the trace is
 * not, and musl 1.2.3 then hangs once the original thread of a forked process has exited (its
 * thread-list lock is never released: fixed upstream by 0c277ff1, in musl 1.2.5). */
static int serving_thread_ends(int t, char how) {
    thread_type helper;
    workers[t].thread = thread_self();
    if (threads_left > 1 && thread_start_fn(&helper, helper_main, (void *)(intptr_t)t))
        fail("could not start a helper thread");
    if (how == 'X') return 2;
#ifdef HAVE_CANCEL
    if (how == 'Z') {
        pthread_cancel(pthread_self());
        pthread_testcancel();
    }
#endif
    thread_exit();
    return 0;
}

/* The arguments of a create command: the key's name, and its destructor slot (-1: none). */
static int read_create(char *p, int *name) {
    int n, used;
    char dash;
    if (sscanf(p, " %d %c", name, &dash) == 2 && dash == '-') return -1;
    sscanf(p, " %d %d%n", name, &n, &used);
    p += used;
    int s = new_slot(*name);
    for (int i = 0; i < n && i < MAX_PROGRAM; i++) {
        struct instr *in = &dtors[s].prog[i];
        in->a = in->b = 0;
        sscanf(p, " %c%n", &in->op, &used);
        p += used;
        if (in->op == 'r' || in->op == 's') sscanf(p, " %d %d%n", &in->a, &in->b, &used);
        else if (in->op == 'd' || in->op == 'n') sscanf(p, " %d%n", &in->a, &used);
        else used = 0;
        p += used;
        dtors[s].len = i + 1;
    }
    return s;
}

#ifdef HAVE_PARALLEL
/* Parallel blocks.  The lanes' threads wait at a barrier, then each runs its operations with
 * no lock of the driver's: only an atomic counter stamps each invocation and return.  Keys a
 * lane creates have names and destructor slots assigned before the block; destructor calls
 * are written under the stdout lock, each line whole, tagged with the thread and operation.
 * Results are printed after every lane has finished (or, for an exit, been joined). */
#define MAX_LANE_OPS 64
struct lane_op {
    char cmd;
    int key, value, slot;
    int invoked, returned, rc, canceled;
    unsigned long raw;
    void *got;
};
struct lane {
    int n, at;
    int stopped; /* an operation's key was not live (a create of this lane failed): the rest never ran */
    unsigned seed;
    struct lane_op ops[MAX_LANE_OPS];
};
static struct lane lanes[MAX_THREADS];
static volatile int in_block;
static int block_jitter, block_lanes, arrived, event_clock;
static int block_order[MAX_THREADS]; /* the block's threads, in the order of its lines */

static int next_event(void) { return __atomic_fetch_add(&event_clock, 1, __ATOMIC_SEQ_CST); }

/* The trace thread calling (a destructor runs in the exiting thread, not the serving one). */
static int thread_index(void) {
    thread_type me = thread_self();
    for (int i = 1; i < MAX_THREADS; i++)
        if (workers[i].running && thread_equal(workers[i].thread, me)) return i;
    return current;
}

static int dtor_enter(void) {
    if (!in_block) return current;
    flockfile(stdout);
    int t = thread_index();
    printf("l %d %d ", t, lanes[t].at);
    return t;
}

static void dtor_leave(void) {
    if (in_block) funlockfile(stdout);
}

/* A short random delay before an operation: spins, and sometimes a yield. */
static void jitter(struct lane *l) {
    if (!block_jitter) return;
    l->seed = l->seed * 1103515245u + 12345u;
    unsigned r = l->seed >> 8;
    for (volatile unsigned i = 0; i < r % (64u * (unsigned)block_jitter); i++) {}
    if (r & 1) sched_yield();
}

/* Wait until n threads have arrived at the block's barrier.  Spinning, not yielding at every
 * turn: a thread that yields is often still off its CPU when the others start, and then runs
 * its operations alone, so they never overlap (the yield now and then lets threads that share
 * one CPU make progress). */
static void await_arrived(int n) {
    for (long spin = 1; __atomic_load_n(&arrived, __ATOMIC_SEQ_CST) < n; spin++)
        if (spin % 4096 == 0) sched_yield();
}

/* Run worker w's lane; returns 1 when its thread returns (its exit, the lane's last operation). */
static int run_lane(struct worker *w) {
    struct lane *l = &lanes[w - workers];
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
    await_arrived(block_lanes);
    for (l->at = 0; l->at < l->n; l->at++) {
        struct lane_op *o = &l->ops[l->at];
        if ((o->cmd == 'T' || o->cmd == 'G' || o->cmd == 'D') && !live[o->key]) {
            __atomic_store_n(&l->stopped, 1, __ATOMIC_SEQ_CST); /* never use a key that is not live */
            return 0;
        }
        jitter(l);
        __atomic_store_n(&o->invoked, next_event(), __ATOMIC_SEQ_CST);
        switch (o->cmd) {
        case 'C':
            o->rc = key_create(&keys[o->key], o->slot < 0 ? NULL : trampolines[o->slot]);
            if (!o->rc) {
                o->raw = (unsigned long)keys[o->key];
                live[o->key] = 1;
            }
            break;
        case 'D':
            live[o->key] = 0;
            o->rc = key_delete(keys[o->key]);
            break;
        case 'T':
            o->rc = key_set(keys[o->key], value_ptr(o->value));
            break;
        case 'G':
            o->got = key_get(keys[o->key]);
            break;
        case 'X':
            return 1;
        case 'Y':
            thread_exit();
        }
        __atomic_store_n(&o->returned, next_event(), __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void read_lane(int t, int m) {
    char line[4096];
    if (t < 0 || t >= MAX_THREADS || !workers[t].running || m > MAX_LANE_OPS) fail("bad lane");
    lanes[t].n = m;
    for (int i = 0; i < m; i++) {
        struct lane_op *o = &lanes[t].ops[i];
        int thread = 0;
        memset(o, 0, sizeof *o);
        if (!fgets(line, sizeof line, stdin)) fail("a parallel block ends early");
        o->cmd = line[0];
        o->slot = -1;
        o->invoked = o->returned = -1;
        lanes[t].stopped = 0;
        if ((t == 0) != (o->cmd == 'K') || (t == 0 && m != 1)) fail("the main thread's lane is one fork");
        if (o->cmd == 'C') o->slot = read_create(line + 1, &o->key);
        else if (o->cmd == 'D') sscanf(line + 1, "%d", &o->key);
        else if (o->cmd == 'T' || o->cmd == 'G') sscanf(line + 1, "%d %d %d", &thread, &o->key, &o->value);
        else if (o->cmd != 'X' && o->cmd != 'Y' && o->cmd != 'K') fail("not an operation of a parallel block");
        if (o->key < 0 || o->key >= MAX_NAMES) fail("key name out of range");
    }
}

static void print_lane_op(int t, int i) {
    struct lane_op *o = &lanes[t].ops[i];
    if (o->invoked < 0) return; /* never ran: the process forked first */
    if (o->returned < 0) {
        printf("b %d %d %d - pending\n", t, i, o->invoked);
        return;
    }
    printf("b %d %d %d %d ", t, i, o->invoked, o->returned);
    switch (o->cmd) {
    case 'C':
        if (o->rc) printf("K %s\n", errname(o->rc));
        else printf("K 0 %lu\n", o->raw);
        break;
    case 'G':
        fputs("V ", stdout);
        put_value(stdout, o->got);
        putchar('\n');
        break;
    case 'X':
    case 'Y':
        printf("R %s %s\n", errname(o->rc), o->canceled ? "canceled" : "returned");
        break;
    default:
        printf("R %s\n", errname(o->rc));
    }
}

/* Whether another lane's thread is inside an operation (invoked, not returned): 1; every lane
 * is done (or stopped): -1; some operation has not started yet: 0. */
static int lane_inside(void) {
    int waiting = 0;
    for (int i = 0; i < block_lanes; i++) {
        struct lane *l = &lanes[block_order[i]];
        if (!block_order[i] || __atomic_load_n(&l->stopped, __ATOMIC_SEQ_CST)) continue;
        for (int j = 0; j < l->n; j++) {
            int invoked = __atomic_load_n(&l->ops[j].invoked, __ATOMIC_SEQ_CST);
            if (invoked >= 0 && __atomic_load_n(&l->ops[j].returned, __ATOMIC_SEQ_CST) < 0) return 1;
            if (invoked < 0) waiting = 1;
        }
    }
    return waiting ? 0 : -1;
}

#define AWAIT_INSIDE_NS 200000000L /* at most 0.2 s: a loaded machine may leave a thread unscheduled that long */

/* Before the main thread forks in a block, wait (a bounded spin) until another thread is inside
 * an operation.  A fork right at the barrier lands before the other threads have started, and
 * one after they finished sees an idle library: either way a lock held across fork never shows.
 * Only the moment of the fork is chosen; the program is one an application could be. */
static void await_inside(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long spin = 1; !lane_inside(); spin++) {
        if (spin % 4096) continue;
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > AWAIT_INSIDE_NS) return;
    }
}

/* The main thread's fork in a block, once the lanes are released: returns 1 in the child, which
 * goes on with the case (only this thread exists there), 0 if fork failed.  The parent's threads
 * run on, silenced, until the child ends, as the parent of any fork in a case does. */
static int fork_in_block(void) {
    struct lane *l = &lanes[0];
    struct lane_op *o = &l->ops[0];
    l->at = 0;
    /* Arrive last, so that this thread is running, not yielding, when the others start. */
    await_arrived(block_lanes - 1);
    __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
    jitter(l); /* before the wait, not after: a fork that waited for an operation goes at once */
    await_inside();
    o->invoked = next_event();
    flockfile(stdout); /* no thread is in the middle of a line when the process forks */
    fflush(stdout);
    pid_t pid = fork_tied();
    if (pid > 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, STDOUT_FILENO);
        funlockfile(stdout);
        follow_child(pid);
    }
    o->rc = pid < 0 ? errno : 0;
    o->returned = next_event();
    funlockfile(stdout);
    if (pid < 0) return 0;
    become_child(0);
    return 1;
}

static void serve_block(char *p) {
    int seed = 0, names = 0, n = 0, order[MAX_THREADS];
    sscanf(p, "%d %d %d %d", &block_jitter, &seed, &names, &n);
    if (n < 1 || n >= MAX_THREADS) fail("bad parallel block");
    for (int i = 0; i < n; i++) {
        char line[64];
        int t = 0, m = 0;
        if (!fgets(line, sizeof line, stdin) || sscanf(line, "L %d %d", &t, &m) != 2) fail("expected a lane");
        read_lane(t, m);
        lanes[t].seed = (unsigned)seed * 7919u + (unsigned)t;
        order[i] = block_order[i] = t;
    }
    if (names > next_name) next_name = names;
    block_lanes = n;
    arrived = event_clock = 0;
    fflush(stdout);
    in_block = 1;
    int forks = 0;
    for (int i = 0; i < n; i++) {
        if (order[i]) signal_worker(order[i], 'L', 0, 0);
        else forks = 1;
    }
    if (forks && fork_in_block()) {
        in_block = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < lanes[order[i]].n; j++) print_lane_op(order[i], j);
        puts("b end");
        return;
    }
    for (int i = 0; i < n; i++) {
        int t = order[i];
        if (!t) continue;
        struct lane *l = &lanes[t];
        struct lane_op *last = &l->ops[l->n - 1];
        if (last->cmd == 'X' || last->cmd == 'Y')
            while (!__atomic_load_n(&l->stopped, __ATOMIC_SEQ_CST) &&
                   __atomic_load_n(&last->invoked, __ATOMIC_SEQ_CST) < 0)
                sched_yield(); /* the exit has begun, or the lane stopped short of it */
        if ((last->cmd != 'X' && last->cmd != 'Y') || l->stopped) {
            await_worker(t);
            continue;
        }
        last->rc = thread_join(workers[t].thread, &last->canceled);
        last->returned = next_event();
        workers[t].running = 0;
        threads_left--;
    }
    in_block = 0;
    current = serving < 0 ? 0 : serving;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < lanes[order[i]].n; j++) print_lane_op(order[i], j);
    puts("b end");
}
#else
static int dtor_enter(void) { return current; }
static void dtor_leave(void) {}
#endif

/* Serve one test case; returns 1 to return from main, 2 to return from a forked worker's start
 * routine, 0 when a pop ends the serving thread's current push scope. */
/* Read up to the checker's "N" that starts this case.  The child is forked before it is asked
 * for, so the pipe may still hold commands the checker sent to the last case after that case had
 * ended (a crash, an `end`): they are not this case's.  0 when stdin is closed. */
static int await_start(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin))
        if (line[0] == 'N' && line[1] == '\n') return 1;
    return 0;
}

static int serve_case(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *p = line;
        char op = *p++;
        int a = 0, b = 0, c = 0;
        unsigned long raw = 0;
        switch (op) {
        case 'S':
            sscanf(p, "%d %d", &a, &b);
            if (a <= 0 || a >= MAX_THREADS || workers[a].running) fail("thread name out of range");
            cond_init(&workers[a].wake);
            memset(workers[a].calls, 0, sizeof workers[a].calls);
            workers[a].running = 1;
            workers[a].detached = b;
            workers[a].done = 0;
            c = thread_start(&workers[a].thread, &workers[a]);
            if (c) workers[a].running = 0;
            else {
                await_worker(a);
                threads_left++;
                if (b) c = thread_detach(workers[a].thread);
            }
            printf("R %s\n", errname(c));
            break;
        case 'C': {
            int s = read_create(p, &a);
            b = create(a, s, &raw);
            if (b) printf("K %s\n", errname(b));
            else printf("K 0 %lu\n", raw);
            break;
        }
#ifdef HAVE_PARALLEL
        case 'B':
            serve_block(p);
            break;
#endif
        case 'D':
            sscanf(p, "%d", &a);
            if (a >= MAX_NAMES) fail("key name out of range");
            live[a] = 0;
            printf("R %s\n", errname(key_delete(keys[a])));
            break;
        case 'T':
        case 'G':
            sscanf(p, "%d %d %d", &a, &b, &c);
            if (b >= MAX_NAMES || (a != serving && !thread_ok(a))) fail("bad thread or key");
            if (a == serving) {
                if (op == 'T') printf("R %s\n", errname(key_set(keys[b], value_ptr(c))));
                else {
                    fputs("V ", stdout);
                    put_value(stdout, key_get(keys[b]));
                    putchar('\n');
                }
            } else {
                hand(a, op, b, c);
                if (op == 'T') printf("R %s\n", errname(workers[a].rc));
                else {
                    fputs("V ", stdout);
                    put_value(stdout, workers[a].got);
                    putchar('\n');
                }
            }
            break;
        case 'X':
        case 'Y':
        case 'Z':
            sscanf(p, "%d %d", &a, &b);
            if (a == serving) {
                fflush(stdout);
                if (serving_thread_ends(a, op) == 2) return 2;
                break;
            }
            if (!thread_ok(a)) fail("bad thread");
            if (op == 'Z') {
#ifdef HAVE_CANCEL
                if (b) {
                    signal_worker(a, 'A', 0, 0);
                    while (!workers[a].spinning) sched_yield();
                }
                current = a;
                pthread_cancel(workers[a].thread);
#endif
            } else {
                signal_worker(a, op, 0, 0);
            }
            reap(a);
            current = serving < 0 ? 0 : serving;
            break;
#ifdef HAVE_CANCEL
        case 'U':
            sscanf(p, "%d %d", &a, &b);
            if (a != serving) {
                if (!thread_ok(a)) fail("bad thread");
                hand(a, 'U', 0, b);
                printf("R 0\n");
                break;
            }
            printf("R 0\n");
            fflush(stdout);
            {
                int ret;
                pthread_cleanup_push(run_handler, (void *)(intptr_t)b);
                ret = serve_case();
                pthread_cleanup_pop(serving_pop_run);
                if (ret) return ret;
            }
            printf("R 0\n");
            break;
        case 'O':
            sscanf(p, "%d %d", &a, &b);
            if (a == serving) {
                serving_pop_run = b;
                return 0;
            }
            if (!thread_ok(a)) fail("bad thread");
            hand(a, 'O', 0, b);
            printf("R 0\n");
            break;
#endif
        case 'K':
            sscanf(p, "%d", &a);
            if (a != serving) {
                if (!thread_ok(a)) fail("bad thread");
                hand(a, 'K', 0, 0);
                printf("R %s\n", errname(workers[a].rc)); /* only if fork failed */
                break;
            }
            fflush(stdout);
            {
                pid_t pid = fork_tied();
                if (pid == 0) {
                    forked(a);
                    break;
                }
                if (pid < 0) {
                    printf("R %s\n", errname(errno));
                    break;
                }
                follow_child(pid);
            }
        case 'E':
            fflush(stdout);
            if (p[1] == 'r') return 1;
            exit(0);
        case 'F': {
            long cap = (keys_max > 0 ? keys_max : 1024) * 4 + 64, count = 0;
            static unsigned long raws[MAX_NAMES];
            b = 0;
            while (count < cap && next_name < MAX_NAMES) {
                b = create(next_name, -1, &raw);
                if (b) break;
                raws[count++] = raw;
            }
            printf("F %s %ld", errname(b), count);
            for (long i = 0; i < count; i++) printf(" %lu", raws[i]);
            putchar('\n');
            break;
        }
        case 'Q':
            fflush(stdout);
            _exit(0);
        default:
            fail("unknown command");
        }
        fflush(stdout);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    /* argv[1]: the checker's pid (the server dies with it) */
    if (argc > 1) die_with_parent((pid_t)strtol(argv[1], NULL, 10));
    /* dietlibc has neither sysconf name: fall back on the <limits.h> constants. */
    keys_max = iterations = -1;
#ifdef _SC_THREAD_KEYS_MAX
    keys_max = sysconf(_SC_THREAD_KEYS_MAX);
#endif
#ifdef _SC_THREAD_DESTRUCTOR_ITERATIONS
    iterations = sysconf(_SC_THREAD_DESTRUCTOR_ITERATIONS);
#endif
#ifdef PTHREAD_KEYS_MAX
    if (keys_max < 0) keys_max = PTHREAD_KEYS_MAX;
#endif
#if defined(TSD_PTH)
    keys_max = PTH_KEY_MAX;
    iterations = PTH_DESTRUCTOR_ITERATIONS;
#elif defined(TSD_C11)
    iterations = TSS_DTOR_ITERATIONS;
#elif defined(PTHREAD_DESTRUCTOR_ITERATIONS)
    if (iterations < 0) iterations = PTHREAD_DESTRUCTOR_ITERATIONS;
#endif
    const char *features = FEATURES;
#ifdef TSD_NO_MAIN_EXIT
    static char without_m[16];
    int n = 0;
    for (const char *f = FEATURES; *f; f++)
        if (*f != 'm') without_m[n++] = *f;
    features = without_m;
#endif
    printf("H %ld %ld %s\n", keys_max, iterations, features);
    fflush(stdout);
    /* The next case's child is forked as soon as the last one has ended, while the checker is
     * busy between cases; the server itself never reads stdin, which is the case's.  Once the
     * checker has closed it (and a child has read its end), the server stops. */
    struct pollfd in = {0, POLLIN, 0};
    while (poll(&in, 1, 0) < 1 || !(in.revents & POLLHUP) || (in.revents & POLLIN)) {
        pid_t pid = fork_tied();
        if (pid == 0) {
            setpgid(0, 0); /* the checker kills the case with its forked children */
            api_init();
            workers[0].running = 1;
            note_task(&workers[0]);
            printf("P %ld\n", (long)getpid());
            fflush(stdout);
            if (!await_start()) return 0;
            return serve_case() == 1 ? 0 : 3;
        }
        if (pid < 0) {
            printf("W x -1\n");
            fflush(stdout);
            return 3;
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(status)) printf("W s %d\n", WTERMSIG(status));
        else printf("W x %d\n", WEXITSTATUS(status));
        fflush(stdout);
    }
    return 0;
}
