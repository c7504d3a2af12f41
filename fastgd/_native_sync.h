/* C helpers of fastgd/_native.pyx (included once, by the module's one translation unit): the OpenMP queries,
   the synchronization of the parallel epoch, the sums of a batch's chunk buffers, and read_floor's loop. The
   rules and the layout (chunk sizes, thread rules, spin count, prefetch distance) are in fastgd/_rules.py. */
#ifndef FASTGD_NATIVE_SYNC_H
#define FASTGD_NATIVE_SYNC_H

#ifdef _OPENMP
#include <omp.h>
#define FASTGD_OPENMP 1
static int fastgd_omp_max_threads(void) { return omp_get_max_threads(); }
static int fastgd_omp_thread_num(void) { return omp_get_thread_num(); }
#else
static int fastgd_omp_thread_num(void) { return 0; }
#define FASTGD_OPENMP 0
static int fastgd_omp_max_threads(void) { return 1; }
#endif

/* Synchronization of the parallel epoch: the protocol of fastgd._kernels._epoch_team (the Numba kernel runs the
   same one with fastgd._intrinsics). Each batch is split into one task per thread; threads claim tasks of the
   published batch only, their own first (fastgd_claim): a thread that finds them all taken waits for the next
   batch holding no task, so a waiter that the OS deschedules (a busy host, more threads than cores) delays
   nobody -- the running threads take all of the next batch. The thread that completes a batch's last task
   reduces, updates and publishes the next batch.

   Waiting: a waiting thread spins briefly (``spins`` pause instructions, fastgd._rules.SPINS_BEFORE_SLEEP: a
   few tens of microseconds), then sleeps on a futex (Linux; elsewhere it yields); the publisher wakes sleepers
   only when there are some. (OpenMP's barriers spin for GOMP_SPINCOUNT, 300,000 by default and fixed when
   libgomp loads: with more threads than cores that is far slower, see docs/design.md.) */
#include <limits.h>
#include <stdlib.h>
#include <sched.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#define FASTGD_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define FASTGD_PAUSE() __asm__ __volatile__("yield")
#else
#define FASTGD_PAUSE() ((void)0)
#endif
typedef struct {
    long long done;       /* tasks completed */
    char pad1[56];
    int published;        /* batches published (the current batch's index) */
    int sleepers;         /* threads asleep on published */
    char pad2[56];
} fastgd_team;

static void fastgd_team_init(fastgd_team* t) { t->done = 0; t->published = 0; t->sleepers = 0; }
/* 1 + the number of tasks completed before, counting this one (acq_rel: the last one sees all chunks) */
static long long fastgd_complete(fastgd_team* t) { return __atomic_add_fetch(&t->done, 1, __ATOMIC_ACQ_REL); }
static int fastgd_published(fastgd_team* t) { return __atomic_load_n(&t->published, __ATOMIC_ACQUIRE); }

/* Wait until the published batch index differs from seen; return it. */
static int fastgd_wait(fastgd_team* t, int seen, int spins) {
    int i, now;
    for (i = 0; i < spins; i++) {
        now = __atomic_load_n(&t->published, __ATOMIC_ACQUIRE);
        if (now != seen) return now;
        FASTGD_PAUSE();
    }
    __atomic_add_fetch(&t->sleepers, 1, __ATOMIC_SEQ_CST);
    while ((now = __atomic_load_n(&t->published, __ATOMIC_SEQ_CST)) == seen) {
#ifdef __linux__
        struct timespec ms = {0, 1000000};  /* at most 1 ms at a time: never stuck on a lost wake-up */
        syscall(SYS_futex, &t->published, FUTEX_WAIT_PRIVATE, seen, &ms, NULL, 0);
#else
        sched_yield();
#endif
    }
    __atomic_sub_fetch(&t->sleepers, 1, __ATOMIC_SEQ_CST);
    return now;
}

/* As fastgd_wait, but while spinning, prefetch [p, end) -- the rows of the task this thread already holds
   for the next batch -- one cache line per spin, so the memory stream does not stop while the publisher
   reduces and updates (which rows a task covers never depends on the parameters). */
static int fastgd_tune_wait_prefetch = 1;  /* benchmarking switches (_tune); they never change a result */
static int fastgd_tune_row_prefetch_f32 = 1;
static int fastgd_tune_head_prefetch = 1;  /* the rows read next, see _tune */
static int fastgd_tune_row_prefetch_f64 = 1;
static int fastgd_tune_prefetch_bytes;  /* how far ahead of the current row: fastgd._rules.PREFETCH_BYTES, see _tune */
static int fastgd_tune_prefetch_level = 1;     /* __builtin_prefetch locality: 1 = into L2 (prefetcht2) */
/* __builtin_prefetch wants a constant locality */
static inline void fastgd_prefetch(const void* p) {
    switch (fastgd_tune_prefetch_level) {
        case 3: __builtin_prefetch(p, 0, 3); break;
        case 2: __builtin_prefetch(p, 0, 2); break;
        case 1: __builtin_prefetch(p, 0, 1); break;
        default: __builtin_prefetch(p, 0, 0);
    }
}

/* count doubles on 64-byte boundaries, for a d-sized array read at random (the lazy epoch's records), or NULL;
   free with free(). From FASTGD_HUGE_BYTES up, on huge-page boundaries and advised to use huge pages (as
   NumPy advises its large arrays): with 4 KiB pages nearly every access to such an array misses the TLB. */
#define FASTGD_HUGE_BYTES (4L << 20)
static double* fastgd_alloc_random(Py_ssize_t count) {
    size_t bytes = ((size_t)(count > 1 ? count : 1) * sizeof(double) + 63) / 64 * 64;
#ifdef __linux__
    if (bytes >= (size_t)FASTGD_HUGE_BYTES) {
        size_t huge = 2UL << 20;
        bytes = (bytes + huge - 1) / huge * huge;
        double* p = (double*)aligned_alloc(huge, bytes);
        if (p != NULL)
            madvise(p, bytes, MADV_HUGEPAGE);  /* a hint: no result depends on it */
        return p;
    }
#endif
    return (double*)aligned_alloc(64, bytes);
}

/* The lazy epoch's hints (fastgd._rules.LAZY_AHEAD_NNZ): a prefetch into L2 that the compiler keeps. GCC takes
   __builtin_prefetch for free of effects, finds a helper that only prefetches pure and deletes its calls; the
   empty volatile asm is an effect it must keep. */
static int fastgd_tune_lazy_hints = 1;  /* benchmarking switches (_tune) */
static Py_ssize_t fastgd_tune_lazy_ahead_nnz;  /* fastgd._rules.LAZY_AHEAD_NNZ, see _tune */
static Py_ssize_t fastgd_tune_lazy_hint_min_bytes;  /* fastgd._rules.LAZY_HINT_MIN_BYTES, see _tune */
static inline void fastgd_hint(const void* p) {
    __builtin_prefetch(p, 0, 1);
    __asm__ __volatile__("");
}

/* Claim a task of the published batch (key: its index + 1): thread w's own task w first (a flag on its
   own cache line, so claims never contend while every thread runs; one central counter made every
   thread's claim wait for the others'), else the first unclaimed one after it, else -1: a thread that
   finds every task of the published batch taken waits holding none, so a thread that the OS deschedules
   (a busy host) delays nobody -- the running threads take its task. Flag j (slots[8 j]) holds the last
   key task j was claimed for. */
static long long fastgd_claim(long long* slots, long long w, long long ntb, long long key) {
    for (long long s = 0; s < ntb; s++) {
        long long j = (w + s) % ntb, v = __atomic_load_n(&slots[8 * j], __ATOMIC_RELAXED);
        while (v < key) {
            if (__atomic_compare_exchange_n(&slots[8 * j], &v, key, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                return j;
        }
    }
    return -1;
}
static int fastgd_wait_prefetch(fastgd_team* t, int seen, const char* p, const char* end, int spins) {
    int now;
    if (fastgd_tune_wait_prefetch) {
        while (p < end) {
            now = __atomic_load_n(&t->published, __ATOMIC_ACQUIRE);
            if (now != seen) return now;
            fastgd_prefetch(p);
            p += 64;
        }
    }
    return fastgd_wait(t, seen, spins);
}

/* Publish batch index value (after the update: release), waking the sleepers if any. */
static void fastgd_wake(fastgd_team* t) {  /* after a seq_cst change of ``published``: the sleepers, if any */
#ifdef __linux__
    if (__atomic_load_n(&t->sleepers, __ATOMIC_SEQ_CST) > 0)
        syscall(SYS_futex, &t->published, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#endif
}
static void fastgd_publish(fastgd_team* t, int value) {
    __atomic_store_n(&t->published, value, __ATOMIC_SEQ_CST);
    fastgd_wake(t);
}

/* The split CSR pass's counters (fastgd._kernels._split_worker: the same protocol, see its docstring), each
   on its own cache line: blocks summed, block sums claimed, residual shares claimed and done per buffer
   (cumulative over the blocks that use it). Progress (a share done, a block summed) is signalled on a
   fastgd_team's ``published`` word, which waiting threads watch (fastgd_wait: spin briefly, then sleep). */
typedef struct {
    long long summed;     char pad0[56];
    long long sumclaim;   char pad1[56];
    long long claimed[2]; char pad2[48];
    long long done[2];    char pad3[48];
} fastgd_split;
static void fastgd_split_init(fastgd_split* s) {
    s->summed = s->sumclaim = 0;
    s->claimed[0] = s->claimed[1] = s->done[0] = s->done[1] = 0;
}
static long long fastgd_load(const long long* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void fastgd_store(long long* p, long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static void fastgd_add(long long* p, long long v) { __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
/* Move the counter *p from ``from`` to from + 1; 1 if this call did it. */
static int fastgd_take(long long* p, long long from) {
    return __atomic_compare_exchange_n(p, &from, from + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}
/* The counter's next ticket below ``end`` (the counter moved past it), or -1 when every one is taken. */
static long long fastgd_ticket(long long* p, long long end) {
    long long v = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < end) {
        if (__atomic_compare_exchange_n(p, &v, v + 1, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return v;
    }
    return -1;
}
static void fastgd_pause(void) { FASTGD_PAUSE(); }
/* Signal progress: advance ``published`` (any number of threads may), waking the sleepers if any. */
static void fastgd_signal(fastgd_team* t) {
    __atomic_add_fetch(&t->published, 1, __ATOMIC_SEQ_CST);
    fastgd_wake(t);
}

/* G = the chunk buffers summed in chunk order. One out-of-line function for every path: with the
   reassociation the build allows, two inlined copies may be vectorized differently (seen: the
   sequential and parallel epochs differed by 1e-18 on some batches). */
__attribute__((noinline)) static void fastgd_sum_chunks(const double* part, Py_ssize_t nch,
                                                        Py_ssize_t stride, Py_ssize_t m, double* G) {
    for (Py_ssize_t q = 0; q <= m; q++) G[q] = 0.0;
    for (Py_ssize_t c = 0; c < nch; c++)
        for (Py_ssize_t q = 0; q <= m; q++) G[q] += part[c * stride + q];
}

/* The dense epoch's sum of a batch's chunk buffers: a fixed pairwise tree over the chunk indices (node
   (half, a), a a multiple of 2 * half: chunks [a, a + 2 * half), its sum kept in chunk a's buffer; the node
   adds its right child, buffer a + half, into its left one, in place). The tree never depends on how the
   chunks are split into tasks: each task adds the nodes inside its own run of chunks [lo, hi) on buffers
   it has just written (fastgd_tree_within), and the task that completes the batch adds the nodes that
   span several runs (fastgd_tree_across): it reads about one partial per task instead of every chunk's
   buffer, and the total (buffer 0) has the same bits for any thread count and on the sequential path
   (one run). Elementwise adds: vectorizing them never changes a bit. */
static inline void fastgd_add_node(double* part, Py_ssize_t a, Py_ssize_t b, Py_ssize_t stride, Py_ssize_t m) {
    double* restrict L = part + a * stride;
    const double* restrict R = part + b * stride;
    for (Py_ssize_t q = 0; q <= m; q++) L[q] += R[q];
}
static void fastgd_tree_within(double* part, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t nch, Py_ssize_t stride,
                               Py_ssize_t m) {
    for (Py_ssize_t half = 1; half < nch; half *= 2) {
        Py_ssize_t step = 2 * half;
        for (Py_ssize_t a = (lo + step - 1) / step * step; a < nch && (a + step < nch ? a + step : nch) <= hi;
             a += step)
            if (a + half < nch) fastgd_add_node(part, a, a + half, stride, m);
    }
}
/* task of chunk c when nch chunks are split into ntb runs, run j = [nch * j / ntb, nch * (j + 1) / ntb) */
static inline Py_ssize_t fastgd_task_of(Py_ssize_t c, Py_ssize_t nch, Py_ssize_t ntb) {
    return ((c + 1) * ntb + nch - 1) / nch - 1;
}
static void fastgd_tree_across(double* part, Py_ssize_t nch, Py_ssize_t ntb, Py_ssize_t stride, Py_ssize_t m) {
    for (Py_ssize_t half = 1; half < nch; half *= 2) {
        Py_ssize_t step = 2 * half;
        for (Py_ssize_t a = 0; a + half < nch; a += step) {
            Py_ssize_t e = (a + step < nch ? a + step : nch) - 1;
            if (fastgd_task_of(a, nch, ntb) != fastgd_task_of(e, nch, ntb))
                fastgd_add_node(part, a, a + half, stride, m);
        }
    }
}

/* One thread's share of read_floor: row sums (vectorized), added up. */
#define FASTGD_READ(NAME, T)                                                                     \
static double NAME(const T* restrict X, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t d) {            \
    double total = 0.0;                                                                          \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                       \
        const T* row = X + i * d;                                                                \
        double s = 0.0;                                                                          \
        _Pragma("omp simd reduction(+:s)")                                                       \
        for (Py_ssize_t c = 0; c < d; c++) s += row[c];                                          \
        total += s;                                                                              \
    }                                                                                            \
    return total;                                                                                \
}
FASTGD_READ(fastgd_read_f32, float)
FASTGD_READ(fastgd_read_f64, double)

#endif  /* FASTGD_NATIVE_SYNC_H */
