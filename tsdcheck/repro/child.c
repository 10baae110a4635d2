/* ---- The trace on real threads (this part runs in a child process) -------------------------
 * Each logical thread tN is a real thread; steps run one at a time, in trace order, handed on
 * by a turn counter.  Every observation is written to the judge as one line:
 *   o STEP TEXT    the call's result          e STEP EVENT   a cleanup handler or destructor call
 *   d STEP         the step is over           ! STEP PROPERTY MESSAGE   a violation seen here
 * In a parallel block STEP is "BLOCK.OP" and "o" carries the invocation and return stamps. */

static key_type keys[NKEYS];
static atomic_int live[NKEYS], made[NKEYS], failed[NKEYS];
static char cells[NVALUES];
static pthread_t thr[NTHREADS];
static char task[NTHREADS][96];
static atomic_int started[NTHREADS], ready[NTHREADS], lane_done[NTHREADS];
static int calls[NTHREADS][NKEYS];
static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static int next_name;
static _Thread_local int me;
static _Thread_local int my_op = -1;
static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static atomic_int turn;
static int out_fd = -1;
static pthread_mutex_t say_lock = PTHREAD_MUTEX_INITIALIZER; /* held across a fork in a block */
static unsigned run_seed;

static const char *errname(int rc, char *buf) {
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
    }
    snprintf(buf, 16, "%d", rc);
    return buf;
}

static void *val(int v) { return v ? &cells[v] : NULL; }

static const char *vtext(const void *p, char *buf) {
    const char *c = p;
    if (p == NULL) return "NULL";
    if (c > cells && c < cells + NVALUES) snprintf(buf, 24, "v%d", (int)(c - cells));
    else snprintf(buf, 24, "?%#lx", (unsigned long)(uintptr_t)p);
    return buf;
}

/* One whole line to the judge (a pipe write of under PIPE_BUF bytes is atomic), never a
 * cancellation point of the program's own making. */
static void say(const char *fmt, ...) {
    char line[1024];
    int old;
    va_list ap;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&say_lock);
    ssize_t w = write(out_fd, line, (size_t)n);
    pthread_mutex_unlock(&say_lock);
    (void)w;
    pthread_setcancelstate(old, NULL);
}

static const char *tag(char *buf) {
    if (my_op >= 0) snprintf(buf, 24, "%d.%d", atomic_load(&turn), my_op);
    else snprintf(buf, 24, "%d", atomic_load(&turn));
    return buf;
}

static void wait_turn(int step) {
    pthread_mutex_lock(&turn_lock);
    while (atomic_load(&turn) != step) pthread_cond_wait(&turn_cond, &turn_lock);
    pthread_mutex_unlock(&turn_lock);
}

static void end_turn(int step) {
    say("d %d", step);
    pthread_mutex_lock(&turn_lock);
    atomic_store(&turn, step + 1);
    pthread_cond_broadcast(&turn_cond);
    pthread_mutex_unlock(&turn_lock);
}

/* A thread with nothing more to do in the trace waits here until the judge ends the process. */
static void park(void) { wait_turn(-1); }

/* Where the kernel shows the calling thread (Linux), to see it end without joining it. */
static void note_task(int t) {
    char link[80];
    ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    if (n > 0) snprintf(task[t], sizeof task[t], "/proc/%s/stat", link);
    else task[t][0] = 0;
}

/* Wait until thread t has terminated, without joining it (detached, or the main thread). */
static void await_end(int t) {
    struct timespec pause = {0, 100000};
    if (!task[t][0]) { /* no /proc: give it a second */
        sleep(1);
        return;
    }
    for (;;) {
        char buf[512];
        FILE *f = fopen(task[t], "r");
        if (!f) return;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *end = strrchr(buf, ')');
        if (!end || end[1] == 0 || end[2] == 'Z' || end[2] == 'X') return;
        nanosleep(&pause, NULL);
    }
}

static const char *join(int t, char *buf) {
    void *ret = NULL;
    int rc = pthread_join(thr[t], &ret);
    if (rc) {
        char e[16];
        snprintf(buf, 32, "join=%s", errname(rc, e));
        return buf;
    }
    return ret == PTHREAD_CANCELED ? "canceled" : "returned";
}

static int take_name(void) {
    pthread_mutex_lock(&names_lock);
    int k = next_name++;
    pthread_mutex_unlock(&names_lock);
    return k;
}

/* Live keys must have distinct values (and, under a reading that wants it, every key ever made). */
static void check_distinct(int k) {
    for (int j = 0; j < NKEYS; j++) {
        int is_live = atomic_load(&live[j]);
        if (j == k || !(is_live || (UNIQUE_FOREVER && atomic_load(&made[j])))) continue;
        if (memcmp(&keys[j], &keys[k], sizeof keys[k]) == 0)
            say("! %d %s k%d got the value of %s key k%d", atomic_load(&turn), is_live ? "keys-distinct" : "keys-never-reused",
                k, is_live ? "live" : "deleted", j);
    }
}

static int create_key(int k, void (*dtor)(void *), int named_by_trace) {
    int rc = key_create(&keys[k], dtor);
    if (named_by_trace) {
        pthread_mutex_lock(&names_lock);
        if (next_name < k + 1) next_name = k + 1;
        pthread_mutex_unlock(&names_lock);
    }
    if (rc == 0) {
        check_distinct(k);
        atomic_store(&made[k], 1);
        atomic_store(&live[k], 1);
    }
    return rc;
}

static int delete_key(int k) {
    atomic_store(&live[k], 0);
    return key_delete(keys[k]);
}

/* Destructor programs (``programs``, above): get | reset v xN | set k v | del k | new v | cancel. */
static const struct instr get_own[1] = {{'g', 0, 0}};
static int dyn_name[NDYN];
static atomic_int dyn_used;
static void (*const dyn_dtor[NDYN])(void *); /* defined below, one function per slot */

static const struct instr *program_of(int k, int *len) {
    for (int i = 0; i < (int)(sizeof programs / sizeof programs[0]); i++)
        if (programs[i].key == k) {
            *len = programs[i].len;
            return programs[i].code;
        }
    *len = 1; /* a key made by `new`: its destructor observes its own value */
    return get_own;
}

struct line {
    char text[900];
    int len, effects;
};

static void append(struct line *l, const char *fmt, ...) {
    va_list ap;
    if (l->len >= (int)sizeof l->text - 1) return;
    if (l->effects++ == 0) l->len += snprintf(l->text + l->len, sizeof l->text - (size_t)l->len, ":");
    l->len += snprintf(l->text + l->len, sizeof l->text - (size_t)l->len, " ");
    va_start(ap, fmt);
    l->len += vsnprintf(l->text + l->len, sizeof l->text - (size_t)l->len, fmt, ap);
    va_end(ap);
    if (l->len > (int)sizeof l->text - 1) l->len = (int)sizeof l->text - 1;
}

/* A cancellation acted on inside a destructor: the call never returns; say what it saw. */
static void cancel_acted(void *p) {
    struct line *l = p;
    l->len += snprintf(l->text + l->len, sizeof l->text - (size_t)l->len, "acted");
    say("%s", l->text);
}

/* Report the cancelability state the destructor found at entry, then reach a cancellation point
 * with cancellation as the destructor holds it: enabling it here would be undefined (XSH 2.9.5.3). */
static void cancel_self(struct line *l, int outer) {
    append(l, "cancel=%s:", outer == PTHREAD_CANCEL_DISABLE ? "disabled" : "enabled");
    l->effects++;
    pthread_cleanup_push(cancel_acted, l);
    pthread_cancel(pthread_self());
    pthread_testcancel();
    pthread_cleanup_pop(0);
    l->len += snprintf(l->text + l->len, sizeof l->text - (size_t)l->len, "returned");
}

static int create_dynamic(int name) {
    int slot = atomic_fetch_add(&dyn_used, 1);
    if (slot >= NDYN || name >= NKEYS) return ENOMEM; /* beyond what this program provisioned */
    dyn_name[slot] = name;
    return create_key(name, dyn_dtor[slot], 0);
}

static void on_dtor(int k, void *arg) {
    int outer, len;
    char b[24], t[24], e[16];
    struct line l = {.len = 0, .effects = 0};
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &outer);
    int n = ++calls[me][k];
    l.len = snprintf(l.text, sizeof l.text, "e %s k%d(%s)", tag(t), k, vtext(arg, b));
    const struct instr *code = program_of(k, &len);
    for (int i = 0; i < len; i++) {
        const struct instr *in = &code[i];
        switch (in->op) {
        case 'g':
            append(&l, "get=%s", vtext(key_get(keys[k]), b));
            break;
        case 'r':
            if (n <= in->b && atomic_load(&live[k])) append(&l, "reset=%s", errname(key_set(keys[k], val(in->a)), e));
            break;
        case 's':
            if (n == 1 && atomic_load(&live[in->a]))
                append(&l, "set k%d=%s", in->a, errname(key_set(keys[in->a], val(in->b)), e));
            break;
        case 'd':
            if (n == 1 && atomic_load(&live[in->a])) append(&l, "del k%d=%s", in->a, errname(delete_key(in->a), e));
            break;
        case 'n':
            if (n == 1) {
                int name = take_name(), rc = create_dynamic(name);
                if (rc == 0) rc = key_set(keys[name], val(in->a));
                append(&l, "new k%d=%s", name, errname(rc, e));
            }
            break;
        case 'x':
            if (n == 1) cancel_self(&l, outer);
            break;
        }
    }
    say("%s", l.text); /* cancellation stays disabled: a destructor must not enable it (XSH 2.9.5.3) */
}

static void handler(void *h) {
    char t[24];
    say("e %s h%d", tag(t), (int)(intptr_t)h);
}

static void thread_starts(int t) {
    me = t;
    note_task(t);
    atomic_store(&started[t], 1);
}

static int spawn(int t, void *(*fn)(void *), int detached) {
    atomic_store(&started[t], 0);
    int rc = pthread_create(&thr[t], NULL, fn, NULL);
    if (rc) return rc;
    while (!atomic_load(&started[t])) sched_yield();
    return detached ? pthread_detach(thr[t]) : 0;
}

/* The target of a cancel waits at a cancellation point (deferred) or spins (asynchronous). */
static _Noreturn void await_cancel(int t, int asynchronous) {
    volatile unsigned long spin = 0;
    if (asynchronous) {
        pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
        atomic_store(&ready[t], 1);
        for (;;) spin++;
    }
    atomic_store(&ready[t], 1);
    for (;;) {
        pthread_testcancel();
        sched_yield();
    }
}

static void cancel_thread(int t) {
    while (!atomic_load(&ready[t])) sched_yield();
    pthread_cancel(thr[t]);
}

/* The parent of a fork: the trace goes on in the child; end as it ends. */
static _Noreturn void follow(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    _exit(WEXITSTATUS(status));
}

static void fresh_locks(void) {
    static const pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    turn_lock = fresh_lock; /* another thread may have held them at the fork */
    names_lock = fresh_lock;
    say_lock = fresh_lock;
    turn_cond = fresh_cond;
}

static void fork_step(int step, int t) {
    char e[16];
    pid_t pid = fork();
    if (pid < 0) {
        say("o %d %s", step, errname(errno, e));
        return;
    }
    if (pid > 0) follow(pid);
    fresh_locks();
    note_task(t);
    say("o %d 0", step);
}

static void fill(int step) {
    char e[16];
    long count = 0;
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&names_lock);
        int k = next_name;
        pthread_mutex_unlock(&names_lock);
        if (k >= NKEYS) break; /* more keys than the limit: the count says so */
        rc = create_key(k, NULL, 1);
        if (rc) break;
        count++;
    }
    say("o %d %ld %s", step, count, errname(rc, e));
}

/* Parallel blocks: the lanes wait at a barrier, then run with no lock of this program's; an
 * atomic counter stamps each invocation and return. */
static atomic_int arrived, event_clock;
static atomic_int inv[MAX_LANE_OPS], ret[MAX_LANE_OPS];
static char res[MAX_LANE_OPS][32];

static int tick(void) { return atomic_fetch_add(&event_clock, 1); }

static void arrive(int total) {
    atomic_fetch_add(&arrived, 1);
    while (atomic_load(&arrived) < total) sched_yield();
}

static void jitter(unsigned *seed, int amount) {
    if (!amount) return;
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = *seed >> 8;
    for (volatile unsigned i = 0; i < r % (64u * (unsigned)amount); i++) {}
    if (r & 1) sched_yield();
}

static void block_begin(int base, int total) {
    for (int i = 0; i < MAX_LANE_OPS; i++) inv[i] = ret[i] = -1;
    pthread_mutex_lock(&names_lock);
    if (next_name < base) next_name = base;
    pthread_mutex_unlock(&names_lock);
    atomic_store(&event_clock, 0);
    arrive(total);
}

static void put(int op, const char *text) { snprintf(res[op], sizeof res[op], "%s", text); }

static void block_end(int step, int nops) {
    for (int i = 0; i < nops; i++) {
        int a = atomic_load(&inv[i]), b = atomic_load(&ret[i]);
        if (a < 0) say("o %d.%d - - skipped", step, i);
        else if (b < 0) say("o %d.%d %d - pending", step, i, a);
        else say("o %d.%d %d %d %s", step, i, a, b, res[i]);
    }
    for (int k = 0; k < NKEYS; k++)
        if (atomic_load(&live[k])) check_distinct(k);
}

/* The main thread's fork in a block, its lanes running: the case goes on in the child, which has
 * only this thread and reports each operation as it last saw it (returned, still running, or not
 * started).  No line is half written at the fork, and the parent's threads write nowhere after. */
static void fork_in_block(int step, int op, int nops) {
    char e[16];
    pthread_mutex_lock(&say_lock);
    pid_t pid = fork();
    if (pid > 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, out_fd);
        pthread_mutex_unlock(&say_lock);
        follow(pid);
    }
    if (pid == 0) {
        fresh_locks();
        note_task(0);
        put(op, "0");
    } else {
        pthread_mutex_unlock(&say_lock);
        put(op, errname(errno, e));
    }
    ret[op] = tick();
    block_end(step, nops);
}
