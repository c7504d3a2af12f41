# cython: language_level=3, boundscheck=False, wraparound=True, cdivision=True, initializedcheck=False
# cython: nonecheck=False, cpow=True, infer_types=True
"""Ahead-of-time compiled twin of fastgd._kernels (the Numba kernels), built by CMakeLists.txt.

Same arrays, integer codes and algorithms as fastgd._kernels (see its docstring for the layout), so the two
backends can be checked against each other and against fastgd.reference. The optimizer rules, the
learning-rate schedule, the epoch's layout (chunks, thread rules, constants) and the step after a batch's
gradient (finish_batch) are not written here: both backends compile fastgd/_rules.py (this module includes its
source, so the C compiler sees the rules and the loops that call them in one translation unit and can inline
them; ``infer_types=True`` above is _rules.py's own directive). What is written here: the row loops, in C
through raw pointers with fused value and index types, and the thread protocol, whose C helpers are in
fastgd/_native_sync.h. The GIL is released for the whole epoch. With OpenMP, the parallel epoch runs in one
parallel region with the task protocol of fastgd._kernels._epoch_team (the same protocol; the Numba kernel
writes it with fastgd._intrinsics): each batch is split into one task per thread, a contiguous run of its
fixed row chunks (each chunk into its own padded buffer); threads claim tasks of the published batch only,
their own first, through one claim flag per task (fastgd_claim), and a thread that finds them all taken waits
for the next batch holding none; the thread that completes a batch's last task completes the sum of the
buffers (dense: the nodes of a fixed pairwise tree across the tasks' runs, each task having added those
inside its own; CSR: in chunk order), applies the update and publishes the next batch. Waiting threads spin
briefly, then sleep on a futex (OpenMP's own barriers spin 300,000 times and collapsed under
oversubscription). In a child forked after a thread team ran (fastgd._config.sequential_only) every entry
point takes a path that opens no OpenMP region. Without OpenMP the same code runs on one thread.
"""

# wraparound stays on at module level: with it off, a negative index is undefined even on a Python object
# (Cython may hand it unadjusted to the type's sq_item). Only loops over typed memoryviews turn it off
# (@cython.wraparound(False)), and there no index may be negative (tests/test_native_indexing.py checks).
cimport cython
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport fabs, isfinite
from libc.limits cimport INT_MAX
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cdef extern from "<stdlib.h>" nogil:
    void* aligned_alloc(size_t alignment, size_t size)


cdef inline double* alloc_lines(Py_ssize_t count) noexcept nogil:
    """``count`` doubles on 64-byte (cache-line) boundaries, or NULL; free with free(). Chunk buffers start at
    the same offset within a cache line in every call: a vectorized loop may peel a first few elements to
    align its accesses to the buffer it writes, and that split of the fused loop's dot product must not
    depend on where malloc put the buffer."""
    return <double*> aligned_alloc(64, ((max(count, 1) * sizeof(double) + 63) // 64) * 64)

# fastgd/_rules.py, which Numba jits too: its source compiled here (Cython pure-Python mode), not cimported
# from another extension, whose functions the C compiler could not inline into the hot loops
include "_rules.py"

import numpy as np


cdef object line_aligned_empty(Py_ssize_t count):
    """``count`` uninitialized float64 values starting on a 64-byte boundary, a NumPy array (as
    fastgd._engine.line_aligned_zeros: the row loop's vector loads of the parameters never straddle two lines)."""
    buf = np.empty(count + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + count]

# C helpers (fastgd/_native_sync.h): OpenMP queries, the parallel epoch's synchronization, chunk sums, read_floor
cdef extern from "_native_sync.h":
    int FASTGD_OPENMP
    int fastgd_omp_max_threads() nogil
    int fastgd_omp_thread_num() nogil
    ctypedef struct fastgd_team:
        int published
    void fastgd_team_init(fastgd_team* t) nogil
    long long fastgd_complete(fastgd_team* t) nogil
    int fastgd_published(fastgd_team* t) nogil
    int fastgd_wait(fastgd_team* t, int seen, int spins) nogil
    int fastgd_wait_prefetch(fastgd_team* t, int seen, const char* p, const char* end, int spins) nogil
    int fastgd_tune_wait_prefetch
    int fastgd_tune_row_prefetch_f32
    int fastgd_tune_head_prefetch
    int fastgd_tune_row_prefetch_f64
    int fastgd_tune_prefetch_bytes
    int fastgd_tune_prefetch_level
    void fastgd_prefetch(const void* p) nogil
    void fastgd_hint(const void* p) nogil
    int fastgd_tune_lazy_hints
    Py_ssize_t fastgd_tune_lazy_ahead_nnz
    Py_ssize_t fastgd_tune_lazy_hint_min_bytes
    double* fastgd_alloc_random(Py_ssize_t count) nogil
    long long fastgd_claim(long long* slots, long long w, long long ntb, long long key) nogil
    void fastgd_publish(fastgd_team* t, int value) nogil
    ctypedef struct fastgd_split:
        long long summed
        long long sumclaim
        long long claimed[2]
        long long done[2]
    void fastgd_split_init(fastgd_split* s) nogil
    long long fastgd_load(const long long* p) nogil
    void fastgd_store(long long* p, long long v) nogil
    void fastgd_add(long long* p, long long v) nogil
    int fastgd_take(long long* p, long long frm) nogil
    long long fastgd_ticket(long long* p, long long end) nogil
    void fastgd_signal(fastgd_team* t) nogil
    void fastgd_pause() nogil
    void sum_chunks "fastgd_sum_chunks" (const double* part, Py_ssize_t nch, Py_ssize_t stride, Py_ssize_t m,
                                          double* G) nogil
    void tree_within "fastgd_tree_within" (double* part, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t nch,
                                            Py_ssize_t stride, Py_ssize_t m) nogil
    void tree_across "fastgd_tree_across" (double* part, Py_ssize_t nch, Py_ssize_t ntb, Py_ssize_t stride,
                                            Py_ssize_t m) nogil
    double fastgd_read_f32(const float* X, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t d) nogil
    double fastgd_read_f64(const double* X, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t d) nogil

fastgd_tune_prefetch_bytes = PREFETCH_BYTES  # (_tune may change it)
fastgd_tune_lazy_ahead_nnz = LAZY_AHEAD_NNZ
fastgd_tune_lazy_hint_min_bytes = LAZY_HINT_MIN_BYTES
OPENMP = bool(FASTGD_OPENMP)

from fastgd import _config  # the fork flag and the n_jobs=None rule (fastgd._config)


def _tune(wait_prefetch=None, row_prefetch_f32=None, row_prefetch_f64=None, fused16_f32=None, fused16_f64=None,
          prefetch_bytes=None, prefetch_level=None, lazy_hints=None, lazy_ahead_nnz=None, head_prefetch=None,
          lazy_hint_min_bytes=None):
    """Benchmarking switches (A/B timings in one process); only fused16_* changes results (rounding).
    Returns the current values.

    ``wait_prefetch``: a thread waiting for the next batch prefetches the rows of the task it holds (default
    on). ``row_prefetch_f32`` / ``row_prefetch_f64``: the dense chunk loop prefetches the row ``prefetch_bytes``
    ahead (default on for both). ``prefetch_bytes`` (default fastgd._rules.PREFETCH_BYTES) and ``prefetch_level``
    (the locality of ``__builtin_prefetch``, default 1: into L2 only, prefetcht2). On the 2-core Xeon VM, 1e6 x
    100 Adam, 2 threads, one process, 5 interleaved rounds, epoch / all-core read of float64 X: B = 4096 1.49 without
    prefetch, 1.31 with 2 KB into L2, 1.35 with 1 KB, 1.33 with 3 KB, 1.39 with 2 KB into L1; B = 256 1.99
    without, 1.69 with 2 KB into L2; float32 B = 4096 1.17 without, 0.93 with. The earlier setting (4-5 KB
    into L1) was slower than none for float64 (a C loop alone: 1.69x vs 1.21x the one-thread read): an L1
    prefetch holds one of the core's few fill buffers until its line arrives, an L2 prefetch does not.
    ``fused16_f32`` / ``fused16_f64``: the fused row loop keeps 16 partial sums of the dot product instead of
    one vector accumulator (default on for both types; see FASTGD_FUSED16). Switching it changes the
    float rounding of the dot products (not their determinism: any thread count gives the same bits).
    ``lazy_hints``: the lazy CSR epoch prefetches what the next batches read (default on; see _lazy_ahead;
    also the CSR loss pass's hints at large d, see _csr_loss), for
    batches of at most ``lazy_ahead_nnz`` stored values (default fastgd._rules.LAZY_AHEAD_NNZ); its hints of
    columns (records, scales, running means) only where the records take at least ``lazy_hint_min_bytes``
    (default fastgd._rules.LAZY_HINT_MIN_BYTES; 0: always).
    ``head_prefetch``: the last rows of a run prefetch the rows read next -- the next batch's first on the
    sequential path, the thread's own task of the next batch on the parallel one -- instead of the rows after
    the run (default on). AMD EPYC (Zen 5), 1e6 x 100 float64, Adam, one thread, thread CPU time ÷ the read of
    X, 9 shuffled rounds: B = 256 with shuffled batches 1.42-1.47 without, 1.34-1.37 with; batches in order and
    B = 4096 unchanged."""
    global fastgd_tune_head_prefetch, fastgd_tune_wait_prefetch, fastgd_tune_row_prefetch_f32
    global fastgd_tune_row_prefetch_f64, fastgd_tune_fused16_f32, fastgd_tune_fused16_f64
    global fastgd_tune_prefetch_bytes, fastgd_tune_prefetch_level
    global fastgd_tune_lazy_hints, fastgd_tune_lazy_ahead_nnz, fastgd_tune_lazy_hint_min_bytes
    if lazy_hint_min_bytes is not None:
        fastgd_tune_lazy_hint_min_bytes = max(0, int(lazy_hint_min_bytes))
    if lazy_ahead_nnz is not None:
        fastgd_tune_lazy_ahead_nnz = max(0, int(lazy_ahead_nnz))
    if lazy_hints is not None:
        fastgd_tune_lazy_hints = 1 if lazy_hints else 0
    if fused16_f32 is not None:
        fastgd_tune_fused16_f32 = 1 if fused16_f32 else 0
    if fused16_f64 is not None:
        fastgd_tune_fused16_f64 = 1 if fused16_f64 else 0
    if head_prefetch is not None:
        fastgd_tune_head_prefetch = 1 if head_prefetch else 0
    if wait_prefetch is not None:
        fastgd_tune_wait_prefetch = 1 if wait_prefetch else 0
    if row_prefetch_f32 is not None:
        fastgd_tune_row_prefetch_f32 = 1 if row_prefetch_f32 else 0
    if row_prefetch_f64 is not None:
        fastgd_tune_row_prefetch_f64 = 1 if row_prefetch_f64 else 0
    if prefetch_bytes is not None:
        fastgd_tune_prefetch_bytes = max(0, int(prefetch_bytes))
    if prefetch_level is not None:
        fastgd_tune_prefetch_level = min(3, max(0, int(prefetch_level)))
    return {"prefetch_bytes": fastgd_tune_prefetch_bytes, "prefetch_level": fastgd_tune_prefetch_level,
            "wait_prefetch": bool(fastgd_tune_wait_prefetch), "row_prefetch_f32": bool(fastgd_tune_row_prefetch_f32),
            "row_prefetch_f64": bool(fastgd_tune_row_prefetch_f64), "head_prefetch": bool(fastgd_tune_head_prefetch),
            "fused16_f32": bool(fastgd_tune_fused16_f32), "fused16_f64": bool(fastgd_tune_fused16_f64),
            "lazy_hints": bool(fastgd_tune_lazy_hints), "lazy_ahead_nnz": fastgd_tune_lazy_ahead_nnz,
            "lazy_hint_min_bytes": fastgd_tune_lazy_hint_min_bytes}


def omp_max_threads():
    """``omp_get_max_threads()``: OMP_NUM_THREADS or a threadpoolctl limit when set, else the CPU count."""
    return fastgd_omp_max_threads()

# the layout constants, compiled from fastgd/_rules.py, by the names of its LAYOUT (a test compares them)
CODES = {"PATH_AUTO": PATH_AUTO, "PATH_SEQUENTIAL": PATH_SEQUENTIAL, "PATH_PARALLEL": PATH_PARALLEL,
         "CHUNK_ROWS": CHUNK_ROWS, "MAX_CHUNKS": MAX_CHUNKS, "CHUNK_BUDGET_BYTES": CHUNK_BUDGET_BYTES, "PAD": PAD,
         "PAR_MIN_WORK": PAR_MIN_WORK, "PAR_WORK_PER_THREAD": PAR_WORK_PER_THREAD, "REGION_MIN_WORK": REGION_MIN_WORK,
         "STATS_CHUNK_BYTES": STATS_CHUNK_BYTES, "STATS_BUDGET_BYTES": STATS_BUDGET_BYTES,
         "SPINS_BEFORE_SLEEP": SPINS_BEFORE_SLEEP, "PREFETCH_BYTES": PREFETCH_BYTES, "PREDICT_ROWS": PREDICT_ROWS,
         "READ_ROWS": READ_ROWS, "SPLIT_ROWS": SPLIT_ROWS, "SPLIT_NNZ": SPLIT_NNZ}
from fastgd._rules import HP_LEN, LOSSES, N_SCALARS, SCHED_LEN
from fastgd._rules import STATE_ROWS  # state rows (slots) each optimizer code needs, declared with the rules

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
    int
    long long

ctypedef fused ptr_t:  # indptr's type, independent of indices' (scipy may give int32 indices, int64 indptr)
    int
    long long


cdef struct XView:
    const char* data
    const char* indices
    const char* indptr
    Py_ssize_t n
    Py_ssize_t d
    bint f32
    bint sparse
    bint idx64
    bint ptr64


cdef struct Problem:
    XView X
    const double* Y
    Py_ssize_t k
    const double* sw
    bint weighted
    int lcode  # the loss (fastgd._rules.loss_value): 0 the squared error
    double la  # its parameter

# ----------------------------------------------------------------------------------------------------------
# chunk gradients

cdef extern from *:
    """
    /* The hot loop of the dense chunk gradient: row i's dot product and row i-1's gradient contribution in
       one pass. restrict tells the compiler the arrays do not overlap, and omp simd lets it vectorize the
       reduction (as Numba's reassoc does). */
    #define FASTGD_FUSED(NAME, T)                                                                    \
    static inline double NAME(const T* restrict row, const T* restrict prev, const double* restrict w, \
                              double* restrict buf, double s_prev, Py_ssize_t d, double acc) {         \
        _Pragma("omp simd reduction(+:acc)")                                                         \
        for (Py_ssize_t c = 0; c < d; c++) {                                                         \
            acc += (double)row[c] * w[c];                                                            \
            buf[c] += s_prev * (double)prev[c];                                                      \
        }                                                                                            \
        return acc;                                                                                  \
    }
    FASTGD_FUSED(fastgd_fused_f32, float)
    FASTGD_FUSED(fastgd_fused_f64, double)

    /* The same pass with 16 partial sums of the dot product (4 AVX2 registers, or 2 AVX-512 ones) instead of
       one vector accumulator: the loop above is one chain of dependent FMAs (d / 4 of them, 4 cycles each:
       about 100 cycles per row at d = 100), longer than the time a row takes to stream from memory when the
       memory is fast. The partials are added in a fixed order (pairwise), so the result depends on d only. */
    static int fastgd_tune_fused16_f32 = 1;  /* _tune: on for both types: fast on every CPU measured (see
                                                 docs/design.md), where one accumulator was 2.5x slower on one */
    static int fastgd_tune_fused16_f64 = 1;
    #define FASTGD_FUSED16(NAME, T)                                                                  \
    static inline double NAME(const T* restrict row, const T* restrict prev, const double* restrict w, \
                              double* restrict buf, double s_prev, Py_ssize_t d, double acc) {         \
        double part[16] = {0};                                                                       \
        Py_ssize_t c = 0, l;                                                                         \
        for (; c + 16 <= d; c += 16) {                                                               \
            _Pragma("omp simd")                                                                      \
            for (l = 0; l < 16; l++) {                                                               \
                part[l] += (double)row[c + l] * w[c + l];                                            \
                buf[c + l] += s_prev * (double)prev[c + l];                                          \
            }                                                                                        \
        }                                                                                            \
        for (; c < d; c++) {                                                                         \
            acc += (double)row[c] * w[c];                                                            \
            buf[c] += s_prev * (double)prev[c];                                                      \
        }                                                                                            \
        for (l = 0; l < 8; l++) part[l] += part[l + 8];                                              \
        for (l = 0; l < 4; l++) part[l] += part[l + 4];                                              \
        return acc + ((part[0] + part[2]) + (part[1] + part[3]));                                    \
    }
    FASTGD_FUSED16(fastgd_fused16_f64, double)
    #if defined(__AVX__) && defined(__FMA__)
    /* float32 rows on every CPU with AVX2 and FMA, AVX-512 included: the same 16 partials, lanes and order of
       adds as the loop above, written so that each group of 4 floats is converted straight from memory
       (vcvtps2pd ymm, m128). GCC vectorizes the loop above as 8-float loads split by vextractf128, and the
       conversions, two per value (the row for the dot product, the previous row for the gradient), were the row
       loop's bottleneck on a Zen 3 EPYC: one thread, 1e6 x 100 float32 streamed, 1.31-1.61 times the one-thread
       read of X, in cache 32 ns a row (docs/design.md, "One pass per epoch, fused"). GCC does the same with
       -march=native on an AVX-512 Xeon (it prefers 256-bit vectors there: perf annotate showed the split loads
       and vextractf128), where these intrinsics measured 1.52-1.54 -> 1.41-1.43 times the one-thread read at
       d = 100, 1.62-1.64 -> 1.42-1.51 at d = 1000 (one-batch epoch, 1e8 values, two builds alternated in
       separate processes). (gcc reassociates the partials' final sum of the loop above, -fassociative-math, so
       the two differ in their last bits.) */
    #include <immintrin.h>
    static inline double fastgd_fused16_f32(const float* restrict row, const float* restrict prev,
                                            const double* restrict w, double* restrict buf, double s_prev,
                                            Py_ssize_t d, double acc) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, s = _mm256_set1_pd(s_prev);
        Py_ssize_t c = 0;
        for (; c + 16 <= d; c += 16) {
            a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + c)), _mm256_loadu_pd(w + c), a0);
            a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + c + 4)), _mm256_loadu_pd(w + c + 4), a1);
            a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + c + 8)), _mm256_loadu_pd(w + c + 8), a2);
            a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + c + 12)), _mm256_loadu_pd(w + c + 12), a3);
            _mm256_storeu_pd(buf + c, _mm256_fmadd_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(prev + c)),
                                                      _mm256_loadu_pd(buf + c)));
            _mm256_storeu_pd(buf + c + 4, _mm256_fmadd_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(prev + c + 4)),
                                                          _mm256_loadu_pd(buf + c + 4)));
            _mm256_storeu_pd(buf + c + 8, _mm256_fmadd_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(prev + c + 8)),
                                                          _mm256_loadu_pd(buf + c + 8)));
            _mm256_storeu_pd(buf + c + 12, _mm256_fmadd_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(prev + c + 12)),
                                                           _mm256_loadu_pd(buf + c + 12)));
        }
        for (; c < d; c++) {
            acc += (double)row[c] * w[c];
            buf[c] += s_prev * (double)prev[c];
        }
        /* part[l] += part[l + 8], then part[l] += part[l + 4], then (p0 + p2) + (p1 + p3), as above */
        a0 = _mm256_add_pd(_mm256_add_pd(a0, a2), _mm256_add_pd(a1, a3));
        __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));
        return acc + (_mm_cvtsd_f64(h) + _mm_cvtsd_f64(_mm_unpackhi_pd(h, h)));
    }
    #else
    FASTGD_FUSED16(fastgd_fused16_f32, float)
    #endif

    /* The dot product of the first row of a chunk (which has no previous row to fuse with). One out-of-line
       function, so that every chunk's first row is rounded alike wherever a task's run of chunks begins:
       runs of any length, hence any thread count, give the same bits. */
    #define FASTGD_DOT(NAME, T)                                                                      \
    __attribute__((noinline)) static double NAME(const T* restrict row, const double* restrict w,    \
                                                 Py_ssize_t d, double acc) {                         \
        _Pragma("omp simd reduction(+:acc)")                                                         \
        for (Py_ssize_t c = 0; c < d; c++) acc += (double)row[c] * w[c];                             \
        return acc;                                                                                  \
    }
    FASTGD_DOT(fastgd_dot_f32, float)
    FASTGD_DOT(fastgd_dot_f64, double)
    """
    double fastgd_dot_f32(const float* row, const double* w, Py_ssize_t d, double acc) nogil
    double fastgd_dot_f64(const double* row, const double* w, Py_ssize_t d, double acc) nogil
    int fastgd_tune_fused16_f32
    int fastgd_tune_fused16_f64
    double fastgd_fused16_f32(const float* row, const float* prev, const double* w, double* buf, double s_prev,
                              Py_ssize_t d, double acc) nogil
    double fastgd_fused16_f64(const double* row, const double* prev, const double* w, double* buf, double s_prev,
                              Py_ssize_t d, double acc) nogil
    double fastgd_fused_f32(const float* row, const float* prev, const double* w, double* buf, double s_prev,
                            Py_ssize_t d, double acc) nogil
    double fastgd_fused_f64(const double* row, const double* prev, const double* w, double* buf, double s_prev,
                            Py_ssize_t d, double acc) nogil



# The float32 row loop is bound by its instructions per row (docs/design.md, Objective), so each loss has its
# own copy of it: _dense is specialized on a tag type as on real_t, and each tag fixes the loss code at compile
# time, which leaves that loss's arithmetic in the row loop and no dispatch on the code (a fused type, not an
# inline function with a constant argument: gcc inlined only some of those). Tags are never dereferenced.
cdef struct AnyLoss:  # the code read at run time: float64 (memory-bound: the dispatch does not show), bad codes
    char _
cdef struct SquaredErrorLoss:
    char _
cdef struct HuberLoss:
    char _
cdef struct EpsilonInsensitiveLoss:
    char _
cdef struct SquaredEpsilonInsensitiveLoss:
    char _
cdef struct QuantileLoss:
    char _

ctypedef fused loss_k:
    AnyLoss
    SquaredErrorLoss
    HuberLoss
    EpsilonInsensitiveLoss
    SquaredEpsilonInsensitiveLoss
    QuantileLoss


cdef inline int _loss_code(const loss_k* tag, int code) noexcept nogil:
    """The loss code of a tag: a constant, or ``code`` (the run-time one) for AnyLoss."""
    if loss_k is SquaredErrorLoss:
        return SQUARED_ERROR
    elif loss_k is HuberLoss:
        return HUBER
    elif loss_k is EpsilonInsensitiveLoss:
        return EPSILON_INSENSITIVE
    elif loss_k is SquaredEpsilonInsensitiveLoss:
        return SQUARED_EPSILON_INSENSITIVE
    elif loss_k is QuantileLoss:
        return QUANTILE
    return code


cdef void _dense_f32(const float* X, const Problem* pb, const double* theta, Py_ssize_t start, Py_ssize_t stop,
                     Py_ssize_t ch, double* bufs, Py_ssize_t stride, Py_ssize_t then) noexcept nogil:
    """_dense on float32 rows, in the row loop compiled for pb's loss."""
    cdef int lcode = pb.lcode
    if lcode == SQUARED_ERROR:
        _dense(X, <const SquaredErrorLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
    elif lcode == HUBER:
        _dense(X, <const HuberLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
    elif lcode == EPSILON_INSENSITIVE:
        _dense(X, <const EpsilonInsensitiveLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
    elif lcode == SQUARED_EPSILON_INSENSITIVE:
        _dense(X, <const SquaredEpsilonInsensitiveLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
    elif lcode == QUANTILE:
        _dense(X, <const QuantileLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
    else:
        _dense(X, <const AnyLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)


cdef void _dense(const real_t* X, const loss_k* tag, const Problem* pb, const double* theta, Py_ssize_t start,
                 Py_ssize_t stop, Py_ssize_t ch, double* bufs, Py_ssize_t stride, Py_ssize_t then) noexcept nogil:
    """Rows [start, stop) cut into chunks of ``ch`` rows from ``start``: chunk q's sums go to bufs + q * stride,
    each exactly as if the chunk were computed alone (same rows, same order, from zero), but the row pipeline
    (row i's dot product fused with row i-1's gradient) runs on across chunk boundaries instead of draining
    and restarting at each one. ``then`` >= 0: the rows read next start there (the next batch), so the rows
    about PREFETCH_BYTES ahead of the last ones are prefetched from there, not after ``stop``."""
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, m = k * p, i, j, c, o, q, nxt, pf
    cdef Py_ssize_t n = pb.X.n, ahead = (fastgd_tune_prefetch_bytes + d * sizeof(real_t) - 1) // (d * sizeof(real_t))
    cdef Py_ssize_t line = 64 // sizeof(real_t)  # elements per cache line
    cdef double acc, s, s_prev, loss, bsum
    cdef double* cur
    cdef bint fused16 = fastgd_tune_fused16_f32 if real_t is float else fastgd_tune_fused16_f64
    # the loss and the targets in locals: read through pb, they would be read again after every store to the
    # gradient (which may alias them), and the loss rule's constants in its parameter recomputed every row
    cdef int lcode = _loss_code(tag, pb.lcode)
    cdef double la = pb.la
    cdef const double* Y = pb.Y
    cdef const double* sw = pb.sw
    cdef bint weighted = pb.weighted
    if not (fastgd_tune_row_prefetch_f32 if real_t is float else fastgd_tune_row_prefetch_f64):
        ahead = n  # never (see _tune)
    cdef const real_t* row
    cdef const real_t* prev
    cdef const double* w
    for q in range((stop - start + ch - 1) // ch if stop > start else 1):
        for c in range(m + 1):
            bufs[q * stride + c] = 0.0
    if stop <= start:
        return
    for j in range(k):
        o = j * p
        w = theta + o
        cur = bufs  # the buffer of the chunk holding row i - 1
        nxt = start + ch  # the first row of the next chunk
        s_prev = loss = bsum = 0.0
        pf = start + ahead  # the row prefetched (an index: a select per row made the loop 5 % slower)
        for i in range(start, stop):
            if i + ahead == stop and then >= 0:  # the rows read after this run: from there on
                pf = then
            if j == 0 and pf < n:  # every cache line of the row about 8 KB ahead, into L2 (see _tune)
                c = 0
                while c < d:
                    fastgd_prefetch(X + pf * d + c)
                    c += line
            pf += 1
            row = X + i * d
            prev = row - d if i > start else row  # row i-1 (not read for the first row)
            if i == start or i == nxt:  # row i opens a chunk
                if i == nxt:  # add row i-1 to its chunk and close it
                    for c in range(d):
                        cur[o + c] = cur[o + c] + s_prev * prev[c]
                    cur[o + d] = bsum
                    cur[m] = loss
                    cur = cur + stride
                    nxt = nxt + ch
                if real_t is float:
                    acc = fastgd_dot_f32(row, w, d, w[d])
                else:
                    acc = fastgd_dot_f64(row, w, d, w[d])
                s, loss = loss_accumulate(lcode, acc - Y[i * k + j], la, sw[i] if weighted else 1.0,
                                          cur[m])  # a chunk's loss runs on over the outputs
                bsum = s
            else:
                # row i's residual and row i-1's gradient in one pass (as the Numba kernel)
                if fused16:
                    if real_t is float:
                        acc = fastgd_fused16_f32(row, prev, w, cur + o, s_prev, d, w[d])
                    else:
                        acc = fastgd_fused16_f64(row, prev, w, cur + o, s_prev, d, w[d])
                elif real_t is float:
                    acc = fastgd_fused_f32(row, prev, w, cur + o, s_prev, d, w[d])
                else:
                    acc = fastgd_fused_f64(row, prev, w, cur + o, s_prev, d, w[d])
                s, loss = loss_accumulate(lcode, acc - Y[i * k + j], la, sw[i] if weighted else 1.0, loss)
                bsum += s
            s_prev = s
        row = X + (stop - 1) * d
        for c in range(d):
            cur[o + c] = cur[o + c] + s_prev * row[c]
        cur[o + d] = bsum
        cur[m] = loss


cdef inline Py_ssize_t _sums_hint_end(const ptr_t* indptr, const Problem* pb) noexcept nogil:
    """fastgd._kernels._sums_hint_end: X's last value where the parameters take SUMS_HINT_MIN_BYTES, else 0."""
    if fastgd_tune_lazy_hints and pb.k * (pb.X.d + 1) * 8 >= SUMS_HINT_MIN_BYTES:
        return indptr[pb.X.n]
    return 0


cdef inline void _hint_sums(const index_t* indices, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t end,
                            const double* theta, const double* buf, Py_ssize_t k, Py_ssize_t p) noexcept nogil:
    """fastgd._kernels._hint_sums: hint the parameters and sums (either NULL) of the values SUMS_AHEAD_VALUES
    after [lo, hi), up to ``end``, in a loop of their own (the sums' loops compile as without it)."""
    cdef Py_ssize_t q, j, c
    for q in range(lo + SUMS_AHEAD_VALUES, min(hi + SUMS_AHEAD_VALUES, end)):
        c = indices[q]
        for j in range(k):
            if theta != NULL:
                fastgd_hint(&theta[j * p + c])
            if buf != NULL:
                fastgd_hint(&buf[j * p + c])


cdef inline double _csr_dot(const real_t* data, const index_t* indices, Py_ssize_t lo, Py_ssize_t hi,
                            const double* w, Py_ssize_t d) noexcept nogil:
    """w[d] + the CSR values [lo, hi) times w at their columns: the one row dot product of the gradient sums
    (_csr), the split pass's residuals (_split) and the loss pass (_csr_loss), so that their residuals have the
    same bits (as fastgd._kernels._row_dot)."""
    cdef double acc = w[d]
    cdef Py_ssize_t q
    for q in range(lo, hi):
        acc = acc + data[q] * w[indices[q]]
    return acc


cdef void _csr(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
               const double* theta, Py_ssize_t start, Py_ssize_t stop, double* buf, bint zero) noexcept nogil:
    # The hot gradient loops stay per backend (see fastgd._kernels._chunk_grad_csr); the rules are shared.
    # zero=False adds into buf (fastgd._kernels._csr_rows): a small batch then costs its non-zeros only.
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, m = k * p, i, j, q, o, lo, hi
    cdef Py_ssize_t end = _sums_hint_end(indptr, pb)
    cdef double s, sr, loss = 0.0
    if zero:
        for q in range(m + 1):
            buf[q] = 0.0
    for i in range(start, stop):
        s = pb.sw[i] if pb.weighted else 1.0
        lo = indptr[i]
        hi = indptr[i + 1]
        _hint_sums(indices, lo, hi, end, theta, buf, k, p)
        for j in range(k):
            o = j * p
            sr, loss = loss_accumulate(pb.lcode, _csr_dot(data, indices, lo, hi, theta + o, d) - pb.Y[i * k + j],
                                       pb.la, s, loss)
            for q in range(lo, hi):
                buf[o + indices[q]] += sr * data[q]
            buf[o + d] += sr
    buf[m] += loss


cdef void chunk_grad(const Problem* pb, const double* theta, Py_ssize_t start, Py_ssize_t stop,
                     double* buf) noexcept nogil:
    """Dispatch on X's storage (dense or CSR), value type and index types; specializations are deduced."""
    cdef const XView* x = &pb.X
    if not x.sparse:
        if x.f32:
            _dense_f32(<const float*> x.data, pb, theta, start, stop, max(stop - start, 1), buf, 0, -1)
        else:
            _dense(<const double*> x.data, <const AnyLoss*> NULL, pb, theta, start, stop, max(stop - start, 1), buf,
                   0, -1)
    elif x.f32:
        _csr_ptr(<const float*> x.data, x, pb, theta, start, stop, buf, True)
    else:
        _csr_ptr(<const double*> x.data, x, pb, theta, start, stop, buf, True)


cdef void run_grad(const Problem* pb, const double* theta, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t ch,
                   double* bufs, Py_ssize_t stride, Py_ssize_t then) noexcept nogil:
    """Chunks of ``ch`` rows of [start, stop), chunk q into bufs + q * stride: the same sums as chunk_grad
    chunk by chunk (dense rows stream through one pipeline, see _dense)."""
    cdef const XView* x = &pb.X
    cdef Py_ssize_t s0
    if not x.sparse:
        if x.f32:
            _dense_f32(<const float*> x.data, pb, theta, start, stop, ch, bufs, stride, then)
        else:
            _dense(<const double*> x.data, <const AnyLoss*> NULL, pb, theta, start, stop, ch, bufs, stride, then)
        return
    s0 = start
    while s0 < stop:
        chunk_grad(pb, theta, s0, min(s0 + ch, stop), bufs)
        bufs += stride
        s0 += ch


cdef inline void _csr_ptr(const real_t* data, const XView* x, const Problem* pb, const double* theta,
                          Py_ssize_t start, Py_ssize_t stop, double* buf, bint zero) noexcept nogil:
    if x.idx64:
        if x.ptr64:
            _csr(data, <const long long*> x.indices, <const long long*> x.indptr, pb, theta, start, stop, buf, zero)
        else:
            _csr(data, <const long long*> x.indices, <const int*> x.indptr, pb, theta, start, stop, buf, zero)
    elif x.ptr64:
        _csr(data, <const int*> x.indices, <const long long*> x.indptr, pb, theta, start, stop, buf, zero)
    else:
        _csr(data, <const int*> x.indices, <const int*> x.indptr, pb, theta, start, stop, buf, zero)


# ----------------------------------------------------------------------------------------------------------
# lazy CSR epoch: the twin of fastgd._kernels._epoch_csr_lazy (the rules: "lazy updates" in fastgd/_rules.py)

cdef extern from *:
    """
    /* The lazy epoch's dot product of a row's n stored values with the batch's raw parameters (pos: each
       value's place). The sequential epoch and the team's (_lazy_team) call this one compiled copy
       (noinline; inlined into each, GCC had vectorized the two into different partial sums). Its vectorized
       loop does not peel for alignment (unaligned loads, in the object code on AVX-512), so its partial sums
       depend on n only; and should a build peel, both callers' arrays sit at the same offsets from cache
       lines (each on lines of its own), so both give the same bits either way. */
    #define FASTGD_LAZY_DOT(NAME, T)                                                                     \
    __attribute__((noinline))                                                                        \
    static double NAME(const T* data, const long long* pos, const double* rawc, Py_ssize_t n, double acc) { \
        for (Py_ssize_t q = 0; q < n; q++) acc = acc + (double) data[q] * rawc[pos[q]];             \
        return acc;                                                                                  \
    }
    FASTGD_LAZY_DOT(fastgd_lazy_dot_f32, float)
    FASTGD_LAZY_DOT(fastgd_lazy_dot_f64, double)
    """
    double fastgd_lazy_dot_f32(const float* data, const long long* pos, const double* rawc, Py_ssize_t n,
                               double acc) nogil
    double fastgd_lazy_dot_f64(const double* data, const long long* pos, const double* rawc, Py_ssize_t n,
                               double acc) nogil


cdef inline double _lazy_dot(const real_t* data, const long long* pos, const double* rawc, Py_ssize_t n,
                             double acc) noexcept nogil:
    if real_t is float:
        return fastgd_lazy_dot_f32(data, pos, rawc, n, acc)
    return fastgd_lazy_dot_f64(data, pos, rawc, n, acc)


cdef struct LazyTrain:
    # what the lazy epoch reads and updates, from the epoch's arguments (see fastgd._kernels.epoch)
    double* th
    double* S
    double* scalars
    const double* hp
    const double* sched
    int code
    double l2
    const double* l2o  # output j's l2 strength in the standardized coordinates (fastgd._rules.unit_l2)
    const double* yu  # output j's objective unit (fastgd._rules.loss_unit; 1 without standardization)
    const double* l2w  # NULL, or column c's factor of the frequency-weighted penalty at l2w[c] (pen[6 + c])
    double wnorm  # pen[2]: fixed batch weight to divide by (0: each batch's own)
    bint fit_intercept
    const double* stdz  # NULL: no standardization
    double* avg  # NULL, or P running means and a count
    double* work  # the caller's workspace for the records (see lazy_work_len), or NULL: the epoch allocates them
    Py_ssize_t work_len
    double loss_sum  # the epoch's weighted loss and weight, added to
    double weight_sum
    int nt  # threads of the passes over every coordinate (1: they open no region)
    int team  # threads sharing each batch's columns (_lazy_team, fastgd._rules.lazy_team_threads; 1: sequential)
    Py_ssize_t nscal  # the scalars' count (the update may change them)
    bint finite  # set by the epoch: whether every parameter is finite at its end


cdef enum:
    # a coordinate's record (as fastgd._kernels' R_*): its column's update count (in output 0's record; while
    # the column is listed in the current batch, -(its place in the list + 1)), its parameter, then its state
    R_STAMP = 0
    R_TH = 1
    R_S = 2
    # coordinates per task of the passes over every coordinate (into the records, the end's catch-up): the
    # threads only share them out, each coordinate's arithmetic is its own
    LAZY_COLUMN_BLOCK = 8192


cdef struct LazyStep:
    # one output's block of a lazy batch's listed coordinates (_lazy_step's argument)
    const LazyTrain* tr
    double* thc  # the block's parameters: its nl listed columns (the first nc centred), then the intercept
    double* Gc  # their gradient sums, made gradients here
    double* Sc  # their state, slot sl at Sc[sl * m1 + t]
    const long long* cols  # their columns
    const double* xsc  # their columns' scales (LazyAdam: reciprocals)
    Py_ssize_t nl
    Py_ssize_t nc
    Py_ssize_t m1  # places in the block: nl, or nl + 1 with the intercept
    double g0  # the batch's sum of the rows' slopes (the intercept's gradient sum)
    double scale  # 2 / the batch's weight (finish_batch's)
    double ys  # the output's objective unit
    double l2j  # the output's l2 strength in the standardized coordinates
    double lr
    bint exact
    double h1
    double h2
    double* scal  # the update's scalars: the batch's copied in; what the update makes of them, out


ctypedef void (*lazy_step_fn)(void*) noexcept nogil

cdef extern from *:
    """
    /* Call f(arg) through a pointer the compiler cannot see through (noipa): f is then compiled once, on its
       own, and every caller runs that one copy. The lazy epoch's step (_lazy_step) is called so from the
       sequential loop and from the team's members: inlined into each, GCC contracted a multiply-add into
       a fused one in one copy and not in the other (with -ffp-contract=fast and -fassociative-math it
       may), and the bits of a coordinate then depended on the thread count. */
    __attribute__((noinline, noipa)) static void fastgd_call(void (*f)(void*), void* arg) { f(arg); }
    """
    void fastgd_call(lazy_step_fn f, void* arg) nogil


cdef void _lazy_step(void* arg) noexcept nogil:
    """The gradients of one output's block of listed coordinates from their sums (as finish_batch: the
    centred columns' share of the intercept's sum, the scales, the penalty), then the optimizer's rule on the
    block (lazy_update). Called through fastgd_call only: one compiled copy for every caller."""
    cdef LazyStep* a = <LazyStep*> arg
    cdef const LazyTrain* tr = a.tr
    cdef const double* z = tr.stdz
    cdef bint std = z != NULL, exact = a.exact
    cdef double l2 = tr.l2, scale = a.scale, g0 = a.g0, ys = a.ys, l2j = a.l2j, sy = scale / ys, v, xs, xm, l2c
    cdef double* Gc = a.Gc
    cdef const double* thc = a.thc
    cdef const long long* cols = a.cols
    cdef Py_ssize_t t, ncen = a.nc
    for t in range(a.nl):
        v = thc[t]
        if std and not exact:  # xs: the reciprocal scale
            xs = a.xsc[t]
            xm = z[cols[t]] if t < ncen else 0.0
            l2c = l2j * tr.l2w[cols[t]] if tr.l2w != NULL and t >= ncen else l2j  # centred: every batch
            Gc[t] = (Gc[t] - xm * g0) * (sy * xs) + ((l2c * xs * xs) if l2 != 0.0 else 0.0) * v
        elif std:
            xs = a.xsc[t]
            xm = z[cols[t]] if t < ncen else 0.0
            Gc[t] = (Gc[t] - xm * g0) * (scale / (xs * ys)) + ((l2j / (xs * xs)) if l2 != 0.0 else 0.0) * v
        else:
            Gc[t] = Gc[t] * scale + l2 * v
    if a.m1 > a.nl:  # the intercept
        Gc[a.nl] = ((g0 * (scale / ys)) if std else g0 * scale) if tr.fit_intercept else 0.0
    for t in range(tr.nscal):
        a.scal[t] = tr.scalars[t]
    if a.m1 > 0:
        lazy_update(tr.code, a.thc, Gc, a.Sc, a.m1, a.scal, tr.hp, a.lr, NULL, exact, a.h1, a.h2)


cdef inline void _lazy_catch_up_at(const LazyTrain* tr, double* R, Py_ssize_t b, Py_ssize_t q, Py_ssize_t j,
                                    bint intercept, double xs, bint exact, double steps, double lr_c, double wd,
                                    double tnow, double c_shift, double ic1) noexcept nogil:
    """What the ``steps`` updates a coordinate skipped did to it (record at R[b], coordinate q, output j; xs its
    column's scale) and to its running mean: the exact rule's catch-up (fastgd._rules.lazy_catch_up) or
    LazyAdam's (lazy_approx_catch_up)."""
    cdef double lam, total
    if exact:
        lam = wd + (0.0 if intercept else (tr.l2o[j] / (xs * xs) if tr.stdz != NULL else tr.l2))
        total = lazy_catch_up(tr.code, R, b + R_TH, R, b + R_S, 1, steps, tr.hp, lr_c, lam)
    else:
        total = lazy_approx_catch_up(R, b + R_TH, steps)
    if tr.avg == NULL:
        pass
    elif exact:
        average_catch_up(tr.avg, q, total, tnow - steps + c_shift, tnow + c_shift)
    else:
        lazy_average(tr.avg, q, total, steps, ic1)


cdef inline void _lazy_raw_intercepts(const LazyTrain* tr, const double* R, Py_ssize_t W, const long long* cen,
                                      Py_ssize_t ncen, Py_ssize_t d, Py_ssize_t k, double* rawb) noexcept nogil:
    """The intercepts in the data's units from the parameters in the records (as raw_theta computes them; each
    multiply-add rounded once, fmadd, so the sequential loop and the team's epilogue give the same bits)."""
    cdef const double* z = tr.stdz
    cdef Py_ssize_t p = d + 1, j, t, c
    cdef double shift
    for j in range(k):
        if z != NULL:
            shift = 0.0
            for t in range(ncen):
                c = cen[t]
                shift = fmadd(R[(j * p + c) * W + R_TH] / z[d + c], z[c], shift)
            rawb[j] = fmadd(z[2 * d + k + j], R[(j * p + d) * W + R_TH] - shift, z[2 * d + j])
        else:
            rawb[j] = R[(j * p + d) * W + R_TH]


cdef inline void _lazy_gather(const LazyTrain* tr, double* R, Py_ssize_t W, const long long* cols,
                              const double* prev, double* xsc, Py_ssize_t m1, Py_ssize_t k, Py_ssize_t d,
                              Py_ssize_t ns, double* thc, double* Gc, double* rawc, Py_ssize_t thj, double* Sc,
                              Py_ssize_t scj, double tnow, double c_shift, bint exact, double lr_c,
                              double wd) noexcept nogil:
    """A batch's m1 listed columns (their update counts before it in ``prev``) caught up with the updates they
    skipped (_lazy_catch_up_at; LazyAdam: moments stay, only decoupled weight decay moves the parameter) and
    gathered: each column's scale into xsc[t] (LazyAdam: its reciprocal), each output j's parameter into
    thc[j * thj + t], a zero gradient sum into Gc, its raw parameter into rawc (as raw_theta: the columns, not
    the intercept at column d), its state (slot sl) into Sc[j * scj + sl * m1 + t]. The twin of _lazy_scatter."""
    cdef const double* z = tr.stdz
    cdef bint std = z != NULL
    cdef Py_ssize_t p = d + 1, t, c, j, q, b, i, sl
    cdef double ic1 = 1.0 / (tnow + c_shift), steps, xs, v
    for t in range(m1):
        steps = tnow - prev[t]
        c = cols[t]
        xs = z[d + c] if std and c < d else 1.0
        if not exact:
            xs = 1.0 / xs  # LazyAdam keeps the column's reciprocal scale
        xsc[t] = xs
        for j in range(k):
            q = j * p + c
            b = q * W
            if steps > 0.0:
                _lazy_catch_up_at(tr, R, b, q, j, c == d, xs, exact, steps, lr_c, wd, tnow, c_shift, ic1)
            i = j * thj + t
            v = R[b + R_TH]
            thc[i] = v
            Gc[i] = 0.0
            if c < d:
                if not std:
                    rawc[i] = v
                elif exact:
                    rawc[i] = z[2 * d + k + j] * (v / xs)
                else:
                    rawc[i] = z[2 * d + k + j] * fastgd_opaque(v * xs)  # v·xs first (no regrouping)
            for sl in range(ns):
                Sc[j * scj + sl * m1 + t] = R[b + R_S + sl]


cdef void _lazy_steps(const LazyTrain* tr, const long long* cols, const double* xsc, Py_ssize_t nl,
                      Py_ssize_t nc, Py_ssize_t m1, Py_ssize_t k, double* thc, double* Gc, Py_ssize_t thj,
                      double* Sc, Py_ssize_t scj, const double* g0, double wb, bint exact, double h1, double h2,
                      double* scal) noexcept nogil:
    """The step after a batch's gradient sums on its listed coordinates, output by output (_lazy_step through
    fastgd_call): output j's places at thc[j * thj], Gc[j * thj], its state at Sc[j * scj], its intercept's
    slope sum g0[j]; ``scal`` receives the batch's scalars as the update leaves them."""
    cdef LazyStep a
    cdef Py_ssize_t j
    a.tr = tr
    a.cols = cols
    a.xsc = xsc
    a.nl = nl
    a.nc = nc
    a.m1 = m1
    a.exact = exact
    a.h1 = h1
    a.h2 = h2
    a.scal = scal
    a.scale = 2.0 / (tr.wnorm if tr.wnorm > 0.0 else wb)  # as finish_batch
    a.lr = lr_at(tr.hp[0], tr.sched, tr.scalars[0])
    for j in range(k):
        a.thc = thc + j * thj
        a.Gc = Gc + j * thj
        a.Sc = Sc + j * scj
        a.g0 = g0[j]
        a.ys = tr.yu[j]
        a.l2j = tr.l2o[j]
        fastgd_call(_lazy_step, &a)


cdef inline void _lazy_scatter(const LazyTrain* tr, double* R, Py_ssize_t W, const long long* cols, Py_ssize_t m1,
                               Py_ssize_t k, Py_ssize_t p, Py_ssize_t ns, const double* thc, Py_ssize_t thj,
                               const double* Sc, Py_ssize_t scj, double tnew, double c_shift,
                               bint exact) noexcept nogil:
    """A batch's m1 listed columns back into their records after the update: the update count ``tnew``, each
    output j's parameter (place t at thc[j * thj + t]) and state (slot sl at Sc[j * scj + sl * m1 + t]), and
    its running mean."""
    cdef double cnt = tnew + c_shift, ic1 = 1.0 / cnt, v
    cdef Py_ssize_t t, c, j, q, b, sl
    for t in range(m1):
        c = cols[t]
        R[c * W + R_STAMP] = tnew
        for j in range(k):
            q = j * p + c
            b = q * W
            v = thc[j * thj + t]
            R[b + R_TH] = v
            for sl in range(ns):
                R[b + R_S + sl] = Sc[j * scj + sl * m1 + t]
            if tr.avg == NULL:
                pass
            elif exact:
                tr.avg[q] += (v - tr.avg[q]) / cnt
            else:
                lazy_average(tr.avg, q, v, 1.0, ic1)


cdef int _lazy_csr(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                   LazyTrain* tr, Py_ssize_t batch_size, const long long* order, Py_ssize_t nb, bint exact,
                   Py_ssize_t ns, Py_ssize_t kk) noexcept nogil:
    """One lazy epoch (see fastgd._kernels._epoch_csr_lazy: the same steps in the same order, the same rules)
    with ``ns`` state slots and ``kk`` outputs (pb.k; see lazy_epoch). Adds the epoch's loss and weight to tr;
    returns 0, or -1 when out of memory.

    The layout differs from Numba's: for the epoch a coordinate's parameter and the state slots its rule uses
    move into one record with its column's update count (``R_*``, fastgd._rules.record_width doubles: Adam's
    is 32 bytes, two to a cache line) in place of the separate arrays, and back at the end, so a touched
    coordinate costs one cache miss for them rather than one per array (the records take the memory Numba's
    work records take). While a column is listed its record holds its place in the list; each stored
    value's place is kept (``posv``) and the batch's gradient sums and raw parameters live in compact arrays
    by place. (The same layout in Numba measured slower than Numba's own: see docs/design.md.) With tr.team > 1
    the batches run on a team of threads (_lazy_team), with the same bits."""
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = kk, p = d + 1, P = k * p
    cdef Py_ssize_t W = record_width(ns)
    cdef double* th = tr.th
    cdef double* S = tr.S
    cdef double* avg = tr.avg
    cdef const double* z = tr.stdz
    cdef bint std = z != NULL, averaging = tr.avg != NULL
    cdef double wd = tr.hp[1] if tr.code == SGD else 0.0  # SGD's coupled weight decay
    cdef double lr_c = lr_at(tr.hp[0], tr.sched, 1.0)  # the rate of every update where a catch-up moves a parameter
    cdef Py_ssize_t ncen = 0, widest = 0, cap, nq_max, c, t, j, o, q, b, i, bi, start, stop, nt, m1
    cdef Py_ssize_t lo, hi
    cdef int rc
    cdef bint ahead, col_hints = fastgd_tune_lazy_hints and P * W * 8 >= fastgd_tune_lazy_hint_min_bytes
    cdef double tstart = tr.scalars[0], tnow, steps, s, acc, sr, st
    cdef double loss, Wb, c_shift
    # LazyAdam (not exact): the batch's constants in place of per-coordinate divisions (fastgd._rules.lazy_update)
    cdef double h1 = lazy_bias_horizon(tr.hp[2]), h2 = lazy_bias_horizon(tr.hp[3])
    if std:
        ncen = _count_nonzero(z, d, 1)  # a compare per column: never worth a region
    for bi in range(nb):
        start = order[bi] * batch_size
        stop = min(start + batch_size, n)
        widest = max(widest, <Py_ssize_t> (indptr[stop] - indptr[start]))
    cap = min(d, widest + ncen)
    nq_max = k * (cap + 1)
    # the records, on cache-line boundaries: in the caller's workspace where it holds them (kept from epoch to
    # epoch, their pages are not faulted in and zeroed again: at a million columns that cost 4-35 ms an epoch)
    cdef bint own = tr.work == NULL or tr.work_len < P * W + 8
    cdef double* R = fastgd_alloc_random(P * W) if own else tr.work + ((64 - (<size_t> tr.work) % 64) % 64) // 8
    # the other scratch arrays (8-byte elements each) carved from one block, each on cache lines of its own (as
    # the team's: see FASTGD_LAZY_DOT), so one free releases them all
    cdef Py_ssize_t lens[11]
    lens[0] = max(ncen, 1)
    lens[1] = lens[2] = lens[3] = cap + 1
    lens[4] = lens[5] = lens[6] = nq_max
    lens[7] = max(ns, 1) * nq_max
    lens[8] = 2 * k
    lens[9] = max(widest, 1)
    lens[10] = max(tr.nscal, 1)
    cdef Py_ssize_t offs[11]
    cdef Py_ssize_t total_len = 0
    for i in range(11):
        offs[i] = total_len
        total_len += (lens[i] + 7) // 8 * 8
    cdef double* scratch = alloc_lines(total_len)
    if R == NULL or scratch == NULL:
        if own:
            free(R)
        free(scratch)
        return -1
    cdef long long* cen = <long long*> (scratch + offs[0])
    cdef long long* cols = <long long*> (scratch + offs[1])
    cdef double* prev = scratch + offs[2]
    cdef double* xsc = scratch + offs[3]  # the listed columns' scales
    cdef double* thc = scratch + offs[4]  # the listed coordinates' parameters, output by output
    cdef double* Gc = scratch + offs[5]  # their gradient sums, then gradients
    cdef double* rawc = scratch + offs[6]  # their parameters in the data's units
    cdef double* Sc = scratch + offs[7]
    cdef double* rawb = scratch + offs[8]  # the intercepts in the data's units
    cdef double* gb = rawb + k
    cdef long long* posv = <long long*> (scratch + offs[9])  # each stored value's column's place in the list
    cdef double* scal = scratch + offs[10]  # the scalars the update leaves (_lazy_steps)
    if ncen > 0:
        ncen = 0
        for c in range(d):
            if z[c] != 0.0:
                cen[ncen] = c
                ncen += 1
    cdef Py_ssize_t nblk = (P + LAZY_COLUMN_BLOCK - 1) // LAZY_COLUMN_BLOCK, blk
    if tr.nt > 1:  # into the records (out again at the end)
        for blk in prange(nblk, schedule="static", num_threads=tr.nt):
            _lazy_into(R, W, th, S, P, ns, tstart, blk * LAZY_COLUMN_BLOCK, min(P, (blk + 1) * LAZY_COLUMN_BLOCK))
    else:
        _lazy_into(R, W, th, S, P, ns, tstart, 0, P)
    _lazy_raw_intercepts(tr, R, W, cen, ncen, d, k, rawb)
    c_shift = (avg[P] if averaging else 0.0) - tstart  # the running mean's count = update count + c_shift
    cdef Py_ssize_t nb_seq = nb  # the batches of the sequential loop (none when the team ran them)
    if tr.team > 1:
        rc = _lazy_team(data, indices, indptr, pb, tr, batch_size, order, nb, exact, ns, k, R, W, cen, ncen, rawb,
                        gb, cap, widest, c_shift, lr_c, wd, h1, h2)
        if rc < 0:
            if own:
                free(R)
            free(scratch)
            return -1
        if rc == 0:
            nb_seq = 0
    for bi in range(nb_seq):
        if fastgd_tune_lazy_hints:
            _lazy_ahead(data, indices, indptr, pb, R, W, z, d, avg, order, bi, nb, batch_size, n, k, p, col_hints)
        start = order[bi] * batch_size
        stop = min(start + batch_size, n)
        Wb = batch_weight(pb.sw, pb.weighted, start, stop)
        if not Wb > 0.0:  # no information, no update (as finish_batch)
            continue
        tnow = tr.scalars[0]
        nt = 0  # list the batch's columns (centred ones first), marking them and keeping their counts
        for t in range(ncen):
            c = cen[t]
            cols[nt] = c
            prev[nt] = R[c * W + R_STAMP]
            R[c * W + R_STAMP] = -1.0 - nt
            nt += 1
        lo = indptr[start]
        hi = indptr[stop]
        ahead = col_hints and hi - lo > fastgd_tune_lazy_ahead_nnz  # not hinted ahead: hint within
        for q in range(lo, hi):
            c = indices[q]
            if ahead and q + LAZY_AHEAD_VALUES < hi:
                fastgd_hint(&R[indices[q + LAZY_AHEAD_VALUES] * W])
            st = R[c * W + R_STAMP]
            if st < 0.0:
                posv[q - lo] = <long long> (-1.0 - st)
            else:
                cols[nt] = c
                prev[nt] = st
                R[c * W + R_STAMP] = -1.0 - nt
                posv[q - lo] = nt
                nt += 1
                if ahead:
                    _lazy_hint_column(R, W, z, d, avg, c, k, p)
        cols[nt] = d  # the intercepts, caught up with the columns
        prev[nt] = R[d * W + R_STAMP]
        m1 = nt + 1
        # catch up what the skipped updates did to these coordinates, and gather them
        _lazy_gather(tr, R, W, cols, prev, xsc, m1, k, d, ns, thc, Gc, rawc, m1, Sc, ns * m1, tnow, c_shift, exact,
                     lr_c, wd)
        for j in range(k):
            gb[j] = 0.0
        loss = 0.0
        b = indptr[start]  # posv's first stored value
        for i in range(start, stop):
            s = pb.sw[i] if pb.weighted else 1.0
            lo = indptr[i]
            hi = indptr[i + 1]
            for j in range(k):
                o = j * m1
                acc = _lazy_dot(data + lo, posv + (lo - b), rawc + o, hi - lo, rawb[j])
                sr, loss = loss_accumulate(pb.lcode, acc - pb.Y[i * k + j], pb.la, s, loss)
                for q in range(lo, hi):
                    Gc[o + posv[q - b]] += sr * data[q]
                gb[j] += sr
        tr.loss_sum += loss
        tr.weight_sum += Wb
        tr.scalars[0] += 1.0
        _lazy_steps(tr, cols, xsc, nt, ncen, m1, k, thc, Gc, m1, Sc, ns * m1, gb, Wb, exact, h1, h2, scal)
        for j in range(tr.nscal):
            tr.scalars[j] = scal[j]
        _lazy_scatter(tr, R, W, cols, m1, k, p, ns, thc, m1, Sc, ns * m1, tr.scalars[0], c_shift, exact)
        _lazy_raw_intercepts(tr, R, W, cen, ncen, d, k, rawb)
    tnow = tr.scalars[0]
    cdef Py_ssize_t bad = 0  # parameters not finite at the end
    nblk = (p + LAZY_COLUMN_BLOCK - 1) // LAZY_COLUMN_BLOCK
    if tr.nt > 1:  # the end of the epoch: every coordinate caught up, and out of the records
        for blk in prange(nblk, schedule="static", num_threads=tr.nt):
            bad += _lazy_end(tr, R, W, d, k, ns, exact, lr_c, wd, tstart, tnow, c_shift, blk * LAZY_COLUMN_BLOCK,
                             min(p, (blk + 1) * LAZY_COLUMN_BLOCK))
    else:
        bad = _lazy_end(tr, R, W, d, k, ns, exact, lr_c, wd, tstart, tnow, c_shift, 0, p)
    tr.finite = bad == 0
    if averaging:
        avg[P] = tnow + c_shift
    if own:
        free(R)
    free(scratch)
    return 0


cdef inline Py_ssize_t _lazy_owner(Py_ssize_t c, Py_ssize_t ng) noexcept nogil:
    """The team member that owns column c of a lazy batch: its group of 8 columns (no two members write one
    cache line of the records, whose width is even), hashed onto [0, ng) by a multiply and a shift."""
    return <Py_ssize_t> ((<unsigned long long> (<unsigned int> ((<unsigned long long> c >> 3) * 2654435761ULL))
                          * <unsigned long long> ng) >> 32)


cdef enum:
    LAZY_TEAM_DONE = INT_MAX - 1  # the lazy team's last published step: the epoch is done


cdef struct LazyTeam:
    # the scratch of the lazy epoch's team (_lazy_team), carved from one block
    Py_ssize_t ng  # members = column groups = tasks of each step
    bint col_hints  # the columns' hints pay (_lazy_csr's col_hints)
    Py_ssize_t cap1  # places per group (a group's listed columns; the intercept's place in group 0)
    Py_ssize_t widest  # stored values of the widest batch
    long long* meta  # per group, a cache line each: listed columns, places (with the intercept), centred, values
    long long* cols  # group g's listed columns at g * cap1 + t
    double* prev  # their update counts before the batch
    double* xsc  # their scales
    double* thc  # parameter of place t of group g, output j, at (j * ng + g) * cap1 + t
    double* Gc  # its gradient sum, then gradient
    double* rawc  # its parameter in the data's units
    double* Sc  # its state: slot sl at (j * ng + g) * ns * cap1 + sl * (the group's places) + t
    long long* posv  # group g's stored values' places (g * cap1 + t) at g * widest + (q - lo)
    long long* posb  # every stored value's place at q - lo (step B, each member its rows')
    long long* vq  # group g's stored values, in row order, at g * widest + v
    long long* vr  # and their rows in the batch
    double* res  # residual of row r, output j at r * k + j
    double* srv  # its loss's slope times the row's weight
    double* scal  # per group (sstride apart) the scalars its update reads and changes
    const double* gb  # the intercepts' slope sums of the batch in step C (_lazy_csr's gb, the epilogue of B's)
    Py_ssize_t sstride
    Py_ssize_t ba  # the batch of steps A and B (nb: none left)
    Py_ssize_t bc  # the batch of step C (-1: none yet)
    double wb_a  # their weights
    double wb_c


cdef int _lazy_team(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                    LazyTrain* tr, Py_ssize_t batch_size, const long long* order, Py_ssize_t nb, bint exact,
                    Py_ssize_t ns, Py_ssize_t k, double* R, Py_ssize_t W, const long long* cen, Py_ssize_t ncen,
                    double* rawb, double* gb, Py_ssize_t cap, Py_ssize_t widest, double c_shift, double lr_c,
                    double wd, double h1, double h2) noexcept nogil:
    """The batches of a lazy epoch (_lazy_csr's loop) shared by a team of tr.team threads, the columns split
    into groups of 8 owned by one member each (_lazy_owner). A batch has three parts: A, each member lists the
    batch's values of its columns and catches up and gathers its columns; B, each member computes the
    residuals of its share of the rows (reading every group's raw parameters); C, each member adds its values'
    slopes into its columns' sums in row order, and updates and scatters its coordinates. C of one batch and A
    of the next touch only the member's own columns, so they are one step: two steps a batch (even: C then A,
    odd: B), one task per member each. After B the member finishing the last task sums the loss and the
    intercepts' slopes in row order and picks the next batch with weight; after C and A it refreshes the
    intercepts' raw values. Every sum is the sequential epoch's, in its order, and every coordinate's
    arithmetic is its own: the same bits for any team size. Tasks are claimed as in the parallel dense epoch
    (fastgd_claim: a member the OS deschedules delays nobody). Returns 0, -1 when out of memory, 1 when the
    epoch has too many batches for the step counter or the scratch of two members would take more than its
    share (the sequential loop then runs them)."""
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, p = d + 1, P = k * p, ng = tr.team, cap1 = cap + 1, ngc, i
    if 2 * nb + 2 >= LAZY_TEAM_DONE:
        return 1  # the sequential loop takes it
    # each member's lists are sized for the widest batch (one member may own every column of a batch), so the
    # scratch grows with the team: at most 1 / LAZY_TEAM_SCRATCH_SHARE of the records' size (LAZY_TEAM_MIN_BYTES
    # at least), fewer members where it would be more (none: the sequential loop)
    cdef Py_ssize_t rows_max = min(batch_size, n) * k + 1
    cdef Py_ssize_t sstride = (max(tr.nscal, 1) + 7) // 8 * 8  # a member's scalars, on lines of their own
    # the doubles of the arrays below: those of one member (lens 0-10, 13), those of the team (11, 12, 14), and
    # each array's rounding to a line
    cdef Py_ssize_t member = 8 + 3 * cap1 + (3 + max(ns, 1)) * k * cap1 + 3 * max(widest, 1) + sstride
    cdef Py_ssize_t fixed = 2 * rows_max + max(widest, 1) + 15 * 8
    cdef Py_ssize_t budget = max(LAZY_TEAM_MIN_BYTES, P * W * 8 // LAZY_TEAM_SCRATCH_SHARE) // 8
    ng = min(ng, (budget - fixed) // member)
    if ng < 2:
        return 1
    ngc = ng * cap1
    cdef LazyTeam tm
    tm.ng = ng
    tm.col_hints = fastgd_tune_lazy_hints and P * W * 8 >= fastgd_tune_lazy_hint_min_bytes
    tm.cap1 = cap1
    tm.widest = max(widest, 1)
    cdef Py_ssize_t lens[15]
    lens[0] = ng * 8
    lens[1] = lens[2] = lens[3] = ngc
    lens[4] = lens[5] = lens[6] = k * ngc
    lens[7] = max(ns, 1) * k * ngc
    lens[8] = lens[9] = lens[10] = ng * tm.widest
    lens[11] = lens[12] = rows_max
    lens[13] = ng * sstride
    cdef Py_ssize_t offs[15]
    cdef Py_ssize_t total_len = 0
    lens[14] = tm.widest
    for i in range(15):  # each array on a cache line of its own
        offs[i] = total_len
        total_len += (lens[i] + 7) // 8 * 8
    cdef double* block = alloc_lines(total_len)
    cdef long long* slots = <long long*> alloc_lines(ng * 8)
    if block == NULL or slots == NULL:
        free(block)
        free(slots)
        return -1
    memset(slots, 0, ng * 64)
    tm.meta = <long long*> (block + offs[0])
    tm.cols = <long long*> (block + offs[1])
    tm.prev = block + offs[2]
    tm.xsc = block + offs[3]
    tm.thc = block + offs[4]
    tm.Gc = block + offs[5]
    tm.rawc = block + offs[6]
    tm.Sc = block + offs[7]
    tm.posv = <long long*> (block + offs[8])
    tm.vq = <long long*> (block + offs[9])
    tm.vr = <long long*> (block + offs[10])
    tm.res = block + offs[11]
    tm.srv = block + offs[12]
    tm.scal = block + offs[13]
    tm.posb = <long long*> (block + offs[14])
    tm.sstride = sstride
    tm.gb = gb
    cdef fastgd_team team
    fastgd_team_init(&team)
    cdef long long runs = 0  # steps completed (written by the member finishing a step, before publishing)
    # the first batch with weight (a batch without is skipped, as the sequential loop skips it)
    tm.bc = -1
    tm.ba = _lazy_next_batch(pb, order, -1, nb, batch_size, &tm.wb_a)
    if tm.ba >= nb:
        free(block)
        free(slots)
        return 0
    cdef int step
    cdef long long me, task, target
    with parallel(num_threads=ng):
        me = fastgd_omp_thread_num()
        step = fastgd_published(&team)
        while step != LAZY_TEAM_DONE:
            task = fastgd_claim(slots, me, ng, step + 1)
            if task < 0:
                step = fastgd_wait(&team, step, SPINS_BEFORE_SLEEP)
                continue
            target = (fastgd_load(&runs) + 1) * ng
            if step % 2 == 1:
                _lazy_team_task(data, indices, indptr, pb, tr, &tm, batch_size, order, tm.ba, 1, task, exact, ns,
                                k, R, W, cen, ncen, rawb, c_shift, lr_c, wd, h1, h2)
            else:
                if tm.bc >= 0:
                    _lazy_team_task(data, indices, indptr, pb, tr, &tm, batch_size, order, tm.bc, 2, task, exact,
                                    ns, k, R, W, cen, ncen, rawb, c_shift, lr_c, wd, h1, h2)
                if tm.ba < nb:
                    _lazy_team_task(data, indices, indptr, pb, tr, &tm, batch_size, order, tm.ba, 0, task, exact,
                                    ns, k, R, W, cen, ncen, rawb, c_shift, lr_c, wd, h1, h2)
            if fastgd_complete(&team) == target:  # the step's last task: its epilogue, then the next step
                _lazy_team_next(pb, tr, &tm, batch_size, order, nb, step, k, R, W, cen, ncen, rawb, gb, &runs,
                                &team)
            step = fastgd_published(&team)
    free(block)
    free(slots)
    return 0


cdef Py_ssize_t _lazy_next_batch(const Problem* pb, const long long* order, Py_ssize_t bi, Py_ssize_t nb,
                                 Py_ssize_t batch_size, double* wb) noexcept nogil:
    """The first batch after bi with weight (nb: none; a batch without is skipped, as the sequential loop skips
    it), its weight into wb."""
    cdef Py_ssize_t start
    bi += 1
    while bi < nb:
        start = order[bi] * batch_size
        wb[0] = batch_weight(pb.sw, pb.weighted, start, min(start + batch_size, pb.X.n))
        if wb[0] > 0.0:
            break
        bi += 1
    return bi


cdef void _lazy_team_task(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                          LazyTrain* tr, LazyTeam* tm, Py_ssize_t batch_size, const long long* order, Py_ssize_t bi,
                          int phase, Py_ssize_t g, bint exact, Py_ssize_t ns, Py_ssize_t k, double* R, Py_ssize_t W,
                          const long long* cen, Py_ssize_t ncen, const double* rawb, double c_shift, double lr_c,
                          double wd, double h1, double h2) noexcept nogil:
    """Member g's part ``phase`` (0: A, 1: B, 2: C; see _lazy_team) of batch order[bi]. The arithmetic of each
    coordinate and each row is _lazy_csr's, line for line."""
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, p = d + 1, ng = tm.ng, cap1 = tm.cap1, ngc = ng * cap1
    cdef Py_ssize_t start = order[bi] * batch_size, stop = min(start + batch_size, n)
    cdef Py_ssize_t lo = indptr[start], hi = indptr[stop], rows = stop - start
    cdef Py_ssize_t nl, m1, nc, nv, t, c, q, j, i, r, r0, r1, base, gw = g * tm.widest
    cdef long long* meta = tm.meta + 8 * g
    cdef long long* cols = tm.cols + g * cap1
    cdef double* prev = tm.prev + g * cap1
    cdef double* xsc = tm.xsc + g * cap1
    cdef const double* z = tr.stdz
    cdef double* avg = tr.avg
    cdef double st, s, acc, sr
    cdef bint ahead
    if phase == 0:  # A: list my columns' values, catch up and gather my columns
        nl = 0
        for t in range(ncen):  # my centred columns first (every batch touches them)
            c = cen[t]
            if _lazy_owner(c, ng) == g:
                cols[nl] = c
                prev[nl] = R[c * W + R_STAMP]
                R[c * W + R_STAMP] = -1.0 - (g * cap1 + nl)
                nl += 1
        nc = nl
        nv = 0
        for r in range(rows):  # my values, in row order (appended without a branch)
            for q in range(indptr[start + r], indptr[start + r + 1]):
                tm.vq[gw + nv] = q
                tm.vr[gw + nv] = r
                nv += _lazy_owner(indices[q], ng) == g
        ahead = tm.col_hints and hi - lo > fastgd_tune_lazy_ahead_nnz  # not hinted ahead: hint within
        for i in range(nv):
            q = tm.vq[gw + i]
            c = indices[q]
            if ahead and i + LAZY_AHEAD_VALUES < nv:
                fastgd_hint(&R[indices[tm.vq[gw + i + LAZY_AHEAD_VALUES]] * W])
            st = R[c * W + R_STAMP]
            if st < 0.0:
                tm.posv[gw + q - lo] = <long long> (-1.0 - st)
            else:
                cols[nl] = c
                prev[nl] = st
                R[c * W + R_STAMP] = -1.0 - (g * cap1 + nl)
                tm.posv[gw + q - lo] = g * cap1 + nl
                nl += 1
                if ahead:
                    _lazy_hint_column(R, W, z, d, avg, c, k, p)
        m1 = nl
        if g == 0:  # the intercepts, caught up with the columns
            cols[nl] = d
            prev[nl] = R[d * W + R_STAMP]
            m1 = nl + 1
        meta[0] = nl
        meta[1] = m1
        meta[2] = nc
        meta[3] = nv
        _lazy_gather(tr, R, W, cols, prev, xsc, m1, k, d, ns, tm.thc + g * cap1, tm.Gc + g * cap1,
                     tm.rawc + g * cap1, ngc, tm.Sc + g * ns * cap1, ngc * ns, tr.scalars[0], c_shift, exact, lr_c, wd)
    elif phase == 1:  # B: the residuals and slopes of my share of the rows
        r0 = rows * g // ng
        r1 = rows * (g + 1) // ng
        for r in range(r0, r1):
            i = start + r
            s = pb.sw[i] if pb.weighted else 1.0
            for q in range(indptr[i], indptr[i + 1]):  # the row's places, from their owners' lists
                tm.posb[q - lo] = tm.posv[_lazy_owner(indices[q], ng) * tm.widest + q - lo]
            for j in range(k):
                acc = _lazy_dot(data + indptr[i], tm.posb + (indptr[i] - lo), tm.rawc + j * ngc,
                                indptr[i + 1] - indptr[i], rawb[j])
                tm.res[r * k + j] = acc - pb.Y[i * k + j]
                sr, acc = loss_accumulate(pb.lcode, tm.res[r * k + j], pb.la, s, 0.0)
                tm.srv[r * k + j] = sr
    else:  # C: my columns' sums in row order, their gradients, the update, the scatter back
        nl = meta[0]
        m1 = meta[1]
        nc = meta[2]
        nv = meta[3]
        for i in range(nv):
            q = tm.vq[gw + i]
            r = tm.vr[gw + i]
            base = tm.posv[gw + q - lo]
            for j in range(k):
                tm.Gc[base + j * ngc] += tm.srv[r * k + j] * data[q]
        tnew = tr.scalars[0]
        # my copy of the scalars (group 0's is the batch's result); the intercepts' slope sums: the epilogue of B's
        _lazy_steps(tr, cols, xsc, nl, nc, m1, k, tm.thc + g * cap1, tm.Gc + g * cap1, ngc, tm.Sc + g * ns * cap1,
                    ngc * ns, tm.gb, tm.wb_c, exact, h1, h2, tm.scal + tm.sstride * g)
        _lazy_scatter(tr, R, W, cols, m1, k, p, ns, tm.thc + g * cap1, ngc, tm.Sc + g * ns * cap1, ngc * ns, tnew,
                      c_shift, exact)


cdef void _lazy_team_next(const Problem* pb, LazyTrain* tr, LazyTeam* tm, Py_ssize_t batch_size,
                          const long long* order, Py_ssize_t nb, int step, Py_ssize_t k, const double* R,
                          Py_ssize_t W, const long long* cen, Py_ssize_t ncen, double* rawb, double* gb,
                          long long* runs, fastgd_team* team) noexcept nogil:
    """The epilogue of a step of the lazy team (by the member finishing its last task), then the next step
    published: after B (odd steps) the loss and the intercepts' slope sums in row order (as _lazy_csr's row
    loop adds them), the update count, and the next batch with weight; after C and A (even steps) the scalars
    the update changed and the intercepts' raw values, or the end (LAZY_TEAM_DONE) after the last batch's C."""
    cdef Py_ssize_t r, j, i
    cdef Py_ssize_t start, stop
    cdef double loss, s, sr
    cdef int nxt = step + 1
    if step % 2 == 1:
        start = order[tm.ba] * batch_size
        stop = min(start + batch_size, pb.X.n)
        for j in range(k):
            gb[j] = 0.0
        loss = 0.0
        for r in range(stop - start):
            s = pb.sw[start + r] if pb.weighted else 1.0
            for j in range(k):
                sr, loss = loss_accumulate(pb.lcode, tm.res[r * k + j], pb.la, s, loss)
                gb[j] += sr
        tr.loss_sum += loss
        tr.weight_sum += tm.wb_a
        tr.scalars[0] += 1.0
        tm.bc = tm.ba
        tm.wb_c = tm.wb_a
        tm.ba = _lazy_next_batch(pb, order, tm.ba, nb, batch_size, &tm.wb_a)
    else:
        if tm.bc >= 0:
            for i in range(tr.nscal):  # what the update did to the scalars (the same in every call)
                tr.scalars[i] = tm.scal[i]
            _lazy_raw_intercepts(tr, R, W, cen, ncen, pb.X.d, k, rawb)
        if tm.ba >= nb:
            nxt = LAZY_TEAM_DONE
    fastgd_store(runs, runs[0] + 1)
    fastgd_publish(team, nxt)


cdef Py_ssize_t _count_nonzero(const double* z, Py_ssize_t d, int nt) noexcept nogil:
    """How many of z[0:d] are non-zero (on nt threads when nt > 1)."""
    cdef Py_ssize_t c, cnt = 0
    if nt > 1:
        for c in prange(d, schedule="static", num_threads=nt):
            if z[c] != 0.0:
                cnt += 1
    else:
        for c in range(d):
            if z[c] != 0.0:
                cnt += 1
    return cnt


cdef inline void _lazy_into(double* R, Py_ssize_t W, const double* th, const double* S, Py_ssize_t P,
                            Py_ssize_t ns, double tstart, Py_ssize_t q0, Py_ssize_t q1) noexcept nogil:
    """Coordinates [q0, q1) into the lazy epoch's records: the update count ``tstart``, the parameter, the
    state slots."""
    cdef Py_ssize_t q, b, sl
    for q in range(q0, q1):
        b = q * W
        R[b + R_STAMP] = tstart
        R[b + R_TH] = th[q]
        for sl in range(ns):
            R[b + R_S + sl] = S[sl * P + q]


cdef Py_ssize_t _lazy_end(LazyTrain* tr, double* R, Py_ssize_t W, Py_ssize_t d, Py_ssize_t k, Py_ssize_t ns,
                          bint exact, double lr_c, double wd, double tstart, double tnow, double c_shift,
                          Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """The end of a lazy epoch for columns [c0, c1) (d: the intercept) of every output: what the updates since
    each coordinate's last touch did to it caught up (and to its running mean), and the parameter and state out
    of the records into tr.th and tr.S. Returns how many of those parameters are not finite.

    A column no batch touched (its count still ``tstart``) under a catch-up that changes nothing (LazyAdam
    without decoupled weight decay, the default fit's) still holds its values in tr.th and tr.S: not stored
    again, which at a million columns saved most of this pass's writes."""
    cdef Py_ssize_t p = d + 1, P = k * p, c, j, q, b, sl, bad = 0
    cdef const double* z = tr.stdz
    cdef double* avg = tr.avg
    cdef bint std = z != NULL, averaging = avg != NULL
    cdef bint still = not exact and not lazy_moves(tr.code, tr.hp, False, 0.0)
    cdef bint store
    cdef double steps, xs, lam, total, v, st
    cdef double ic1 = 1.0 / (tnow + c_shift)
    for c in range(c0, c1):
        st = R[c * W + R_STAMP]
        steps = tnow - st
        store = not (still and st == tstart)
        for j in range(k):
            q = j * p + c
            b = q * W
            if steps > 0.0:
                _lazy_catch_up_at(tr, R, b, q, j, c == d, z[d + c] if std and c < d else 1.0, exact, steps, lr_c,
                                  wd, tnow, c_shift, ic1)
            v = R[b + R_TH]
            if not isfinite(v):
                bad += 1
            if store:
                tr.th[q] = v
                for sl in range(ns):
                    tr.S[sl * P + q] = R[b + R_S + sl]
    return bad


cdef inline void _lazy_hint_column(const double* R, Py_ssize_t W, const double* z, Py_ssize_t d,
                                   const double* avg, Py_ssize_t c, Py_ssize_t k, Py_ssize_t p) noexcept nogil:
    """Prefetch what the lazy epoch reads of column c: its coordinates' records and running means, its scale
    (a hint: no result depends on it)."""
    cdef Py_ssize_t j, q
    if z != NULL:
        fastgd_hint(&z[d + c])
    for j in range(k):
        q = j * p + c
        fastgd_hint(&R[q * W])
        if W > 4:  # a record that may straddle two lines
            fastgd_hint(&R[q * W + W - 1])
        if avg != NULL:
            fastgd_hint(&avg[q])


cdef inline void _hint_span(const void* first, const void* end) noexcept nogil:
    """Hint the cache lines of [first, end) (fastgd_hint): one every 64 bytes from first, and the last byte's,
    whose line the steps may pass over; nothing when the span is empty."""
    cdef const char* a = <const char*> first
    cdef const char* e = <const char*> end
    if a >= e:
        return
    while a < e:
        fastgd_hint(a)
        a += 64
    fastgd_hint(e - 1)


cdef inline void _lazy_ahead(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                             const double* R, Py_ssize_t W, const double* z, Py_ssize_t d, const double* avg,
                             const long long* order, Py_ssize_t bi, Py_ssize_t nb, Py_ssize_t batch_size,
                             Py_ssize_t n, Py_ssize_t k, Py_ssize_t p, bint col_hints) noexcept nogil:
    """Hints for the batches after batch bi of a lazy epoch, so their misses overlap this batch's work: the
    row bounds of batch bi + 3, the stored values, targets and weights of batch bi + 2's rows, the columns of
    batch bi + 1 (_lazy_hint_column; with ``col_hints``: the records take LAZY_HINT_MIN_BYTES), each for
    batches of at most LAZY_AHEAD_NNZ values (larger ones hint within)."""
    cdef Py_ssize_t s0, s1, lo, hi, q
    if bi + 3 < nb:
        s0 = order[bi + 3] * batch_size
        fastgd_hint(&indptr[s0])
        fastgd_hint(&indptr[min(s0 + batch_size, n)])
    if bi + 2 < nb:
        s0 = order[bi + 2] * batch_size
        s1 = min(s0 + batch_size, n)
        lo = indptr[s0]
        hi = indptr[s1]
        if hi - lo <= fastgd_tune_lazy_ahead_nnz:
            _hint_span(&pb.Y[s0 * k], &pb.Y[s1 * k])
            if pb.weighted:
                fastgd_hint(&pb.sw[s0])
                fastgd_hint(&pb.sw[s1 - 1])
            _hint_span(&indices[lo], &indices[hi])
            _hint_span(&data[lo], &data[hi])
    if bi + 1 < nb:
        s0 = order[bi + 1] * batch_size
        lo = indptr[s0]
        hi = indptr[min(s0 + batch_size, n)]
        if col_hints and hi - lo <= fastgd_tune_lazy_ahead_nnz:
            for q in range(lo, hi):
                _lazy_hint_column(R, W, z, d, avg, indices[q], k, p)


cdef int lazy_epoch(const Problem* pb, LazyTrain* tr, Py_ssize_t batch_size, const long long* order, Py_ssize_t nb,
                    bint exact, Py_ssize_t ns) noexcept nogil:
    """_lazy_csr for X's value and index types. One output with two state slots (Adam's: the default fit's)
    passes them as constants, from which GCC compiles copies of _lazy_csr for them (interprocedural constant
    propagation: the loops over outputs and slots unrolled), a fifth faster (docs/design.md)."""
    if pb.k == 1 and ns == 2:
        return _lazy_types(pb, tr, batch_size, order, nb, exact, 2, 1)
    return _lazy_types(pb, tr, batch_size, order, nb, exact, ns, pb.k)


cdef inline int _lazy_types(const Problem* pb, LazyTrain* tr, Py_ssize_t batch_size, const long long* order,
                            Py_ssize_t nb, bint exact, Py_ssize_t ns, Py_ssize_t k) noexcept nogil:
    cdef const XView* x = &pb.X
    if x.f32:
        return _lazy_ptr(<const float*> x.data, pb, tr, batch_size, order, nb, exact, ns, k)
    return _lazy_ptr(<const double*> x.data, pb, tr, batch_size, order, nb, exact, ns, k)


cdef inline int _lazy_ptr(const real_t* data, const Problem* pb, LazyTrain* tr, Py_ssize_t batch_size,
                          const long long* order, Py_ssize_t nb, bint exact, Py_ssize_t ns,
                          Py_ssize_t k) noexcept nogil:
    cdef const XView* x = &pb.X
    if x.idx64:
        if x.ptr64:
            return _lazy_csr(data, <const long long*> x.indices, <const long long*> x.indptr, pb, tr, batch_size,
                             order, nb, exact, ns, k)
        return _lazy_csr(data, <const long long*> x.indices, <const int*> x.indptr, pb, tr, batch_size, order, nb,
                         exact, ns, k)
    if x.ptr64:
        return _lazy_csr(data, <const int*> x.indices, <const long long*> x.indptr, pb, tr, batch_size, order, nb,
                         exact, ns, k)
    return _lazy_csr(data, <const int*> x.indices, <const int*> x.indptr, pb, tr, batch_size, order, nb, exact, ns, k)


# ----------------------------------------------------------------------------------------------------------
# Python entry points (same signatures as fastgd._kernels)


cdef inline bint _is_index_array(a):
    return a.dtype == np.int32 or a.dtype == np.int64


cdef XView make_view(X) except *:
    """A raw view of a dense array or a CSR tuple, after checking what the kernels rely on (O(n + nnz) for CSR:
    indptr starts at 0, never decreases, ends within indices; every column index is in [0, n_features))."""
    cdef XView v
    cdef object data
    if isinstance(X, tuple):
        if len(X) != 4:
            raise ValueError("CSR X must be a tuple (data, indices, indptr, n_features)")
        data, indices, indptr, d = X
        for name, a in (("data", data), ("indices", indices), ("indptr", indptr)):
            if not isinstance(a, np.ndarray) or a.ndim != 1 or not a.flags.c_contiguous:
                raise ValueError(f"CSR X: {name} must be a 1-D C-contiguous NumPy array")
        for name, a in (("indices", indices), ("indptr", indptr)):
            if not _is_index_array(a):
                raise ValueError(f"CSR X: {name} must hold int32 or int64 values, got {a.dtype}")
        d = int(d)
        if d < 0:
            raise ValueError(f"CSR X: n_features must be >= 0, got {d}")
        if indptr.shape[0] < 1:
            raise ValueError("CSR X: indptr must hold n_samples + 1 entries, got an empty array")
        if indptr[0] != 0:
            raise ValueError(f"CSR X: indptr[0] must be 0, got {indptr[0]}")
        if data.shape[0] != indices.shape[0]:
            raise ValueError(f"CSR X: data and indices must have the same length, got {data.shape[0]} and "
                             f"{indices.shape[0]}")
        if indptr.shape[0] > 1 and (indptr[1:] < indptr[:-1]).any():
            raise ValueError("CSR X: indptr must be nondecreasing")
        nnz = int(indptr[-1])
        if nnz > indices.shape[0]:
            raise ValueError(f"CSR X: indptr[-1] = {nnz} exceeds len(indices) = {indices.shape[0]}")
        if nnz > 0:
            lo, hi = int(indices[:nnz].min()), int(indices[:nnz].max())
            if lo < 0 or hi >= d:
                raise ValueError(f"CSR X: column index {lo if lo < 0 else hi} out of range [0, n_features = {d})")
        v.sparse = True
        v.data = <const char*> <size_t> data.ctypes.data
        v.indices = <const char*> <size_t> indices.ctypes.data
        v.indptr = <const char*> <size_t> indptr.ctypes.data
        v.n = indptr.shape[0] - 1
        v.d = d
        v.idx64 = indices.dtype.itemsize == 8
        v.ptr64 = indptr.dtype.itemsize == 8
    else:
        if not isinstance(X, np.ndarray) or X.ndim != 2:
            raise ValueError("X must be a 2-D NumPy array or a CSR tuple (data, indices, indptr, n_features)")
        if not X.flags.c_contiguous:
            raise ValueError("X must be C-contiguous")
        data = X
        v.sparse = False
        v.data = <const char*> <size_t> X.ctypes.data
        v.indices = NULL
        v.indptr = NULL
        v.n = X.shape[0]
        v.d = X.shape[1]
        v.idx64 = False
        v.ptr64 = False
    if data.dtype == np.float32:
        v.f32 = True
    elif data.dtype == np.float64:
        v.f32 = False
    else:
        raise ValueError(f"X must hold float32 or float64 values, got {data.dtype}")
    return v


cdef int _check_rows(const XView* x, const double[:, ::1] Y, const double[::1] sw,
                     const double[:, ::1] theta) except -1:
    """Y has X's rows; sw empty or one weight per row; theta (k, d + 1) with k = Y's columns."""
    cdef Py_ssize_t n = x.n, d = x.d, k = Y.shape[1]
    if Y.shape[0] != n:
        raise ValueError(f"Y must have one row per sample of X: got {Y.shape[0]} rows for {n} samples")
    if sw.shape[0] != 0 and sw.shape[0] != n:
        raise ValueError(f"sw (sample weights) must be empty or hold one weight per sample ({n}), got "
                         f"{sw.shape[0]}")
    if theta.shape[0] != k or theta.shape[1] != d + 1:
        raise ValueError(f"theta must have shape (n_outputs, n_features + 1) = ({k}, {d + 1}), got "
                         f"({theta.shape[0]}, {theta.shape[1]})")
    return 0


cdef int _check_batches(Py_ssize_t n, Py_ssize_t batch_size, const long long[::1] ids, str name) except -1:
    """batch_size >= 1 and every listed batch index in [0, n_batches)."""
    cdef Py_ssize_t nb, i
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}")
    nb = (n + batch_size - 1) // batch_size
    for i in range(ids.shape[0]):
        if ids[i] < 0 or ids[i] >= nb:
            raise ValueError(f"{name} holds batch index {ids[i]}, outside [0, n_batches = {nb})")
    return 0


cdef int _check_epoch_args(const XView* x, const double[:, ::1] Y, const double[::1] sw,
                           const double[:, ::1] theta, const double[:, ::1] state, const double[::1] scalars,
                           int code, const double[::1] hp, const double[::1] sched, const double[::1] pen,
                           Py_ssize_t batch_size, const long long[::1] order) except -1:
    """Raise ValueError unless every array ``epoch`` is given has the shape the code below relies on."""
    cdef Py_ssize_t P = Y.shape[1] * (x.d + 1)
    _check_rows(x, Y, sw, theta)
    _check_batches(x.n, batch_size, order, "order")
    if code < 0 or code >= len(STATE_ROWS):
        raise ValueError(f"optimizer code must be in [0, {len(STATE_ROWS)}), got {code}")
    if state.shape[0] < STATE_ROWS[code] or state.shape[1] != P:
        raise ValueError(f"state must have shape ({STATE_ROWS[code]}, {P}) for this optimizer and theta (start a "
                         f"fresh state when the optimizer or the shape changes), got ({state.shape[0]}, "
                         f"{state.shape[1]})")
    if scalars.shape[0] < N_SCALARS:
        raise ValueError(f"scalars must hold {N_SCALARS} values, got {scalars.shape[0]}")
    if hp.shape[0] < HP_LEN:
        raise ValueError(f"hp must hold {HP_LEN} hyperparameters, got {hp.shape[0]}")
    if sched.shape[0] < SCHED_LEN:
        raise ValueError(f"sched must hold {SCHED_LEN} values, got {sched.shape[0]}")
    if pen.shape[0] < 2 or pen.shape[0] == 4 or (pen.shape[0] > 6 and pen.shape[0] != 6 + x.d):  # a loss code
        # without its parameter, say
        raise ValueError(f"pen must hold 2, 3, 5 or 6 values ([l1, l2, batch weight, loss code, loss param, "
                         f"l2 at touch], the last one, two or four left off), or 6 + d (the l2 at touch's "
                         f"column factors after them), got {pen.shape[0]}")
    if pen.shape[0] > 4:
        _check_loss(int(pen[3]), pen[4])
    return 0


cdef int _check_loss(int code, double a) except -1:
    """As fastgd._kernels._check_loss."""
    if code < 0 or code >= len(LOSSES):
        raise ValueError(f"loss code must be in [0, {len(LOSSES)}), got {code}")
    if code == QUANTILE and not (a > 0.0 and a < 1.0):
        raise ValueError(f"the quantile loss's parameter must be in (0, 1), got {a}")
    if not a >= 0.0:
        raise ValueError(f"the loss's parameter (epsilon) must be >= 0, got {a}")
    return 0


cdef int _threads(n_threads) except -1:
    """The thread count an entry point runs with (None: the n_jobs=None rule of fastgd._config); 1 in a
    child forked after threads had run."""
    if _config.sequential_only():
        return 1
    if n_threads is None:
        return _config.effective_n_threads(None)
    return max(1, int(n_threads))



def epoch(X, const double[:, ::1] Y, const double[::1] sw, double[:, ::1] theta, double[:, ::1] state,
          double[::1] scalars, int code, const double[::1] hp, const double[::1] sched, const double[::1] pen,
          bint fit_intercept, Py_ssize_t batch_size, const long long[::1] order, int n_threads, int path,
          const double[::1] stdz, double[::1] avg, double[::1] work):
    """One fused epoch; arguments and return value as fastgd._kernels.epoch."""
    cdef Problem pb
    pb.X = make_view(X)
    _check_epoch_args(&pb.X, Y, sw, theta, state, scalars, code, hp, sched, pen, batch_size, order)
    pb.Y = &Y[0, 0]
    pb.k = Y.shape[1]
    pb.weighted = sw.shape[0] > 0
    pb.sw = &sw[0] if pb.weighted else NULL
    pb.lcode, pb.la = (int(pen[3]), pen[4]) if pen.shape[0] > 4 else (0, 0.0)
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = pb.k, P = k * (d + 1), m = P
    cdef Py_ssize_t ch = chunk_rows(batch_size, m), nch_max = (batch_size + ch - 1) // ch
    cdef Py_ssize_t stride = chunk_stride(m), nb = order.shape[0], bi, c, start, stop, nch, s0, one, q
    cdef long long workers = 0 if _config.sequential_only() else epoch_threads(batch_size, d, k, n_threads, path)
    cdef bint use_par = workers > 0
    # finish_batch's arguments (fastgd/_rules.py): pen = [l1, l2, batch weight, loss code, loss param]
    cdef double* th = &theta[0, 0]
    cdef double* S = &state[0, 0] if state.shape[0] > 0 else NULL
    cdef double* scal = &scalars[0]
    cdef const double* hpp = &hp[0]
    cdef const double* sch = &sched[0]
    cdef double l1 = pen[0], l2 = pen[1], wnorm = pen[2] if pen.shape[0] > 2 else 0.0
    cdef double sums[2]  # the epoch's weighted loss and weight
    sums[0] = sums[1] = 0.0
    if stdz.shape[0] not in (0, 2 * d + 2 * k):
        raise ValueError(f"stdz must be empty or hold 2*d + 2*k = {2 * d + 2 * k} values, got {stdz.shape[0]}")
    if avg.shape[0] not in (0, P + 1):
        raise ValueError(f"avg must be empty or hold k*(d+1) + 1 = {P + 1} values, got {avg.shape[0]}")
    cdef const double* z = &stdz[0] if stdz.shape[0] > 0 else NULL  # NULL: no standardization
    cdef double* avgp = &avg[0] if avg.shape[0] > 0 else NULL  # NULL: no running mean
    cdef int kind = LAZY_NONE
    cdef int rc
    cdef LazyTrain tr
    cdef Py_ssize_t ns
    cdef double[::1] unit_view
    if pb.X.sparse:
        kind = lazy_kind_of_loss(lazy_kind(code, hpp, z != NULL, l1, l2, constant_rate(sch),
                                           pen.shape[0] > 5 and pen[5] != 0.0), pb.lcode)
    if kind != LAZY_NONE:  # a batch updates what it touches (see "lazy updates" in fastgd/_rules.py)
        tr.th, tr.S, tr.scalars, tr.hp, tr.sched, tr.code = th, S, scal, hpp, sch, code
        tr.l2, tr.wnorm, tr.fit_intercept, tr.stdz, tr.avg = l2, wnorm, fit_intercept, z, avgp
        tr.l2w = &pen[6] if pen.shape[0] > 6 else NULL  # the frequency-weighted penalty's factors
        unit_view = np.empty(2 * k)  # each output's objective unit and l2 strength (as finish_batch)
        output_units(pb.lcode, pb.la, l2, z, z != NULL, d, k, &unit_view[0], &unit_view[k])
        tr.yu = &unit_view[0]
        tr.l2o = &unit_view[k]
        tr.loss_sum = tr.weight_sum = 0.0
        tr.work = &work[0] if work.shape[0] > 0 else NULL
        tr.work_len = work.shape[0]
        ns = min(state.shape[0], used_slots(code, hpp))  # the slots the rule touches
        tr.nt = 1 if _config.sequential_only() or path == PATH_SEQUENTIAL else region_threads(
            max(n_threads, 1), P // LAZY_REGION_COORDS, P * record_width(ns))
        tr.nscal = scalars.shape[0]
        tr.team = 1 if _config.sequential_only() else lazy_team_threads(
            (int(X[2][n]) * min(batch_size, n)) // max(n, 1), P * record_width(ns) * 8, max(n_threads, 1), path)
        if tr.nt > 1 or tr.team > 1:
            _config.note_team_started()
        with nogil:
            rc = lazy_epoch(&pb, &tr, batch_size, &order[0] if nb > 0 else NULL, nb, kind == LAZY_EXACT, ns)
        if rc < 0:
            raise MemoryError()
        return tr.loss_sum, tr.weight_sum, bool(tr.finite)
    raw_arr = line_aligned_empty(k * (d + 1)).reshape((k, d + 1)) if z != NULL else None  # the row loop reads it
    cdef double[:, ::1] raw_view
    cdef double* raw  # the parameters in the data's units (th itself without standardization)
    if z != NULL:
        raw_view = raw_arr
        raw = &raw_view[0, 0]
        raw_theta(th, z, k, d, raw)
    else:
        raw = th
    cdef double* part = alloc_lines((nch_max if use_par or not pb.X.sparse else 1) * stride)
    cdef double* G = <double*> malloc((m + 1) * sizeof(double))
    cdef double* eta = <double*> malloc(P * sizeof(double))
    if part == NULL or G == NULL or eta == NULL:
        free(part)
        free(G)
        free(eta)
        raise MemoryError()
    cdef const long long* order_p = &order[0] if nb > 0 else NULL
    cdef double W
    cdef fastgd_team team
    cdef long long j, ntb, me, ntn
    cdef Py_ssize_t nx, s1, n1
    cdef long long* slots = NULL
    cdef const char* pf_lo
    cdef const char* pf_hi
    cdef Py_ssize_t row_bytes = d * (4 if pb.X.f32 else 8)
    cdef long long* task_start = NULL
    # tasks per batch: one contiguous run of chunks per thread (contiguous shares stream X better than
    # interleaved chunks, and cost one claim per thread per batch); which thread computes a chunk never
    # changes its value, so the split may depend on the thread count
    cdef long long ntask = max(workers, 1)
    if use_par:
        _config.note_team_started()
        if nb >= INT_MAX:
            raise ValueError(f"too many batches for one epoch ({nb}); use a larger batch_size")
        task_start = <long long*> malloc((nb + 1) * sizeof(long long))
        slots = <long long*> alloc_lines(ntask * 8)  # one claim flag per task, a cache line each
        if task_start == NULL or slots == NULL:
            free(part)
            free(G)
            free(eta)
            free(task_start)
            free(slots)
            raise MemoryError()
        memset(slots, 0, ntask * 64)
        task_start[0] = 0
        for bi in range(nb):  # batch bi owns tasks [task_start[bi], task_start[bi + 1])
            start = order_p[bi] * batch_size
            nch = (min(start + batch_size, n) - start + ch - 1) // ch
            task_start[bi + 1] = task_start[bi] + min(nch, ntask)
        fastgd_team_init(&team)
    try:
        with nogil:
            if use_par:
                with parallel(num_threads=ntask):  # see fastgd_team above for the protocol
                    me = fastgd_omp_thread_num()
                    bi = fastgd_published(&team)
                    while bi < nb:
                        ntb = task_start[bi + 1] - task_start[bi]
                        j = fastgd_claim(slots, me, ntb, bi + 1)
                        if j < 0:  # all of batch bi is taken: wait for bi + 1, prefetching my own share of it
                            pf_lo = NULL
                            pf_hi = NULL
                            if not pb.X.sparse and bi + 1 < nb:
                                j = me
                                ntb = task_start[bi + 2] - task_start[bi + 1]
                                if j < ntb:
                                    start = order_p[bi + 1] * batch_size
                                    stop = min(start + batch_size, n)
                                    nch = (stop - start + ch - 1) // ch
                                    s0 = start + (nch * j // ntb) * ch
                                    pf_lo = pb.X.data + s0 * row_bytes
                                    pf_hi = pb.X.data + min(start + (nch * (j + 1) // ntb) * ch, stop) * row_bytes
                            bi = fastgd_wait_prefetch(&team, bi, pf_lo, pf_hi, SPINS_BEFORE_SLEEP)
                            continue
                        start = order_p[bi] * batch_size
                        stop = min(start + batch_size, n)
                        nch = (stop - start + ch - 1) // ch
                        c = nch * j // ntb  # task j: a run of chunks, through one row pipeline
                        nx = -1  # where my own task of the next batch starts: the rows my run's tail prefetches
                        if not pb.X.sparse and bi + 1 < nb and fastgd_tune_head_prefetch:
                            ntn = task_start[bi + 2] - task_start[bi + 1]
                            if me < ntn:
                                s1 = order_p[bi + 1] * batch_size
                                n1 = (min(s1 + batch_size, n) - s1 + ch - 1) // ch
                                nx = s1 + (n1 * me // ntn) * ch
                        run_grad(&pb, raw, start + c * ch, min(start + (nch * (j + 1) // ntb) * ch, stop), ch,
                                 part + c * stride, stride, nx)
                        if not pb.X.sparse:  # the sum tree's nodes inside my run (see fastgd_tree_within)
                            tree_within(part, c, nch * (j + 1) // ntb, nch, stride, m)
                        if fastgd_complete(&team) == task_start[bi + 1]:  # the batch's last task is done
                            if pb.X.sparse:
                                sum_chunks(part, nch, stride, m, G)
                            else:
                                tree_across(part, nch, ntb, stride, m)
                                memcpy(G, part, (m + 1) * sizeof(double))
                            finish_batch(G, batch_weight(pb.sw, pb.weighted, start, stop), th, raw, S, scal, code,
                                         hpp, sch, l1, l2, wnorm, pb.lcode, pb.la, fit_intercept,
                                         eta, k, d, sums, z, z != NULL, avgp, avgp != NULL)
                            fastgd_publish(&team, bi + 1)
                        bi = fastgd_published(&team)
            else:
                for bi in range(nb):
                    start = order_p[bi] * batch_size
                    stop = min(start + batch_size, n)
                    nch = (stop - start + ch - 1) // ch
                    if pb.X.sparse:  # one buffer (with many features a chunk buffer is large)
                        for q in range(m + 1):
                            G[q] = 0.0
                        for c in range(nch):  # the same chunks in the same order
                            s0 = start + c * ch
                            chunk_grad(&pb, raw, s0, min(s0 + ch, stop), part)
                            for q in range(m + 1):
                                G[q] += part[q]
                    else:
                        # the same chunks; the rows prefetched past this batch are the next one's first
                        run_grad(&pb, raw, start, stop, ch, part, stride,
                                 order_p[bi + 1] * batch_size if bi + 1 < nb and fastgd_tune_head_prefetch else -1)
                        tree_within(part, 0, nch, nch, stride, m)  # the same tree, as one run
                        memcpy(G, part, (m + 1) * sizeof(double))
                    finish_batch(G, batch_weight(pb.sw, pb.weighted, start, stop), th, raw, S, scal, code,
                                 hpp, sch, l1, l2, wnorm, pb.lcode, pb.la, fit_intercept, eta, k, d, sums, z,
                                 z != NULL, avgp, avgp != NULL)
    finally:
        free(part)
        free(G)
        free(eta)
        free(task_start)
        free(slots)
    finite = True
    for q in range(P):
        if not isfinite(th[q]):
            finite = False
    return sums[0], sums[1], finite


def lazy_work_len(Py_ssize_t P, Py_ssize_t ns):
    """Doubles of ``epoch``'s ``work`` in which a lazy epoch of P coordinates and ``ns`` state slots keeps its
    records (record_width(ns) each), with a cache line's slack to align them."""
    return P * record_width(ns) + 8


def read_floor(X, n_threads=None):
    """A read-only pass over a dense X, one contiguous share of the rows per thread (a benchmark's floor, as
    fastgd._kernels.read_floor; benchmarks take the faster of the two: on the 2-core Xeon VM this C loop read
    1e6 x 100 float64 about 5 % faster than the Numba one)."""
    cdef XView x = make_view(X)
    if x.sparse:
        raise ValueError("read_floor takes a dense array")
    cdef int nt = _threads(n_threads)
    cdef Py_ssize_t t, n = x.n, d = x.d
    sums = np.zeros(nt)
    cdef double[::1] sv = sums
    if nt > 1:
        _config.note_team_started()
    with nogil:
        if nt > 1:
            for t in prange(nt, schedule="static", chunksize=1, num_threads=nt):
                if x.f32:
                    sv[t] = fastgd_read_f32(<const float*> x.data, n * t // nt, n * (t + 1) // nt, d)
                else:
                    sv[t] = fastgd_read_f64(<const double*> x.data, n * t // nt, n * (t + 1) // nt, d)
        elif x.f32:
            sv[0] = fastgd_read_f32(<const float*> x.data, 0, n, d)
        else:
            sv[0] = fastgd_read_f64(<const double*> x.data, 0, n, d)
    return float(sums.sum())


def all_finite(X, n_threads=None):
    """As fastgd._kernels.all_finite: False when the 2-D array X holds a NaN or an infinity (or its sum
    overflows: then check exactly), from one read of X (read_floor's) with the threads the work is worth."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    nt = region_threads(_threads(n_threads), (n + READ_ROWS - 1) // READ_ROWS, n * max(d, 1))
    return bool(isfinite(read_floor(X, nt)))


@cython.wraparound(False)
def predict(X, const double[:, ::1] theta, n_threads=None):
    """(n, k) predictions for a dense array or a CSR tuple, float64, without converting X.

    ``n_threads``: None follows the ``n_jobs=None`` rule (fastgd._config.effective_n_threads); 1, or a
    child forked after threads had run, takes a loop that opens no OpenMP region.
    """
    cdef Problem pb
    pb.X = make_view(X)
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = theta.shape[0], i, j, q
    if theta.shape[1] != d + 1:
        raise ValueError(f"theta must have n_features + 1 = {d + 1} columns, got {theta.shape[1]}")
    cdef int nt = region_threads(_threads(n_threads), (n + PREDICT_ROWS - 1) // PREDICT_ROWS, _work(&pb.X, n, k))
    out = np.empty((n, k))
    cdef double[:, ::1] o = out
    cdef const double* th = &theta[0, 0] if theta.shape[0] > 0 else NULL
    if n == 0 or k == 0:
        return out
    if nt > 1:
        _config.note_team_started()
    with nogil:
        if nt > 1:
            for i in prange(n, schedule="static", num_threads=nt):
                predict_row(&pb.X, i, th, d, k, &o[i, 0])
        else:
            for i in range(n):
                predict_row(&pb.X, i, th, d, k, &o[i, 0])
    return out


cdef inline void predict_row(const XView* x, Py_ssize_t i, const double* th, Py_ssize_t d, Py_ssize_t k,
                             double* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(k):
        out[j] = row_dot(x, i, th + j * (d + 1), d)


cdef double row_dot(const XView* x, Py_ssize_t i, const double* w, Py_ssize_t d) noexcept nogil:
    cdef double acc = w[d]
    cdef Py_ssize_t c, q
    if not x.sparse:
        if x.f32:
            for c in range(d):
                acc = acc + (<const float*> x.data)[i * d + c] * w[c]
        else:
            for c in range(d):
                acc = acc + (<const double*> x.data)[i * d + c] * w[c]
        return acc
    cdef Py_ssize_t lo, hi
    if x.ptr64:
        lo = (<const long long*> x.indptr)[i]
        hi = (<const long long*> x.indptr)[i + 1]
    else:
        lo = (<const int*> x.indptr)[i]
        hi = (<const int*> x.indptr)[i + 1]
    if x.idx64:
        for q in range(lo, hi):
            acc = acc + _value(x, q) * w[(<const long long*> x.indices)[q]]
    else:
        for q in range(lo, hi):
            acc = acc + _value(x, q) * w[(<const int*> x.indices)[q]]
    return acc


cdef long long _work(const XView* x, Py_ssize_t rows, Py_ssize_t k) noexcept nogil:
    """As fastgd._kernels._work: multiply-adds of ``rows`` rows for ``k`` outputs (CSR: mean values per row)."""
    cdef long long per = x.d
    if x.sparse:
        per = ((<const long long*> x.indptr)[x.n] if x.ptr64 else (<const int*> x.indptr)[x.n])
        per = (per + max(x.n, 1) - 1) // max(x.n, 1)
    return rows * max(per, 1) * max(k, 1)


cdef inline double _value(const XView* x, Py_ssize_t q) noexcept nogil:
    return (<const float*> x.data)[q] if x.f32 else (<const double*> x.data)[q]


cdef Py_ssize_t _stats_setup(Problem* pb, X, const double[:, ::1] Y, const double[::1] sw,
                             const double[:, ::1] theta, Py_ssize_t batch_size, const long long[::1] batch_ids,
                             loss, Py_ssize_t* per, bint loss_only=False) except -1:
    """batches_stats' and batches_loss's checks and problem; returns the number of groups of batches (``per``
    batches each), as fastgd._kernels._stats_layout (``loss_only``: _loss_layout) groups them."""
    pb.X = make_view(X)
    _check_rows(&pb.X, Y, sw, theta)
    _check_batches(pb.X.n, batch_size, batch_ids, "batch_ids")
    pb.Y = &Y[0, 0]
    pb.k = Y.shape[1]
    pb.weighted = sw.shape[0] > 0
    pb.sw = &sw[0] if pb.weighted else NULL
    pb.lcode, pb.la = (0, 0.0) if loss is None else (int(loss[0]), float(loss[1]))
    _check_loss(pb.lcode, pb.la)
    cdef Py_ssize_t nb = batch_ids.shape[0]
    per[0] = batches_per_group(nb, pb.k * (pb.X.d + 1), loss_only)
    return (nb + per[0] - 1) // per[0]


cdef double _split(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                   const double* theta, Py_ssize_t lo, Py_ssize_t hi, double* res, Py_ssize_t base, double* buf,
                   double loss) noexcept nogil:
    """The split pass of CSR rows [lo, hi) (fastgd._kernels._split_residuals and _split_sums): ``buf`` NULL,
    res[(i - base)·k + j] = the residual _csr takes (the same _csr_dot); else, from those residuals in row order,
    _csr's adds into ``buf`` (the same adds in the same order), returning ``loss`` plus the rows' losses."""
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, i, j, q, o, a, b
    cdef Py_ssize_t end = _sums_hint_end(indptr, pb)
    cdef double s, sr
    for i in range(lo, hi):
        a = indptr[i]
        b = indptr[i + 1]
        _hint_sums(indices, a, b, end, theta if buf == NULL else NULL, buf, k, p)
        if buf == NULL:
            for j in range(k):
                res[(i - base) * k + j] = _csr_dot(data, indices, a, b, theta + j * p, d) - pb.Y[i * k + j]
            continue
        s = pb.sw[i] if pb.weighted else 1.0
        for j in range(k):
            o = j * p
            sr, loss = loss_accumulate(pb.lcode, res[(i - base) * k + j], pb.la, s, loss)
            for q in range(a, b):
                buf[o + indices[q]] += sr * data[q]
            buf[o + d] += sr
    return loss


cdef double _split_ptr(const Problem* pb, const double* theta, Py_ssize_t lo, Py_ssize_t hi, double* res,
                       Py_ssize_t base, double* buf, double loss) noexcept nogil:
    """_split on X's value and index types."""
    cdef const XView* x = &pb.X
    if x.f32:
        if x.idx64:
            if x.ptr64:
                return _split(<const float*> x.data, <const long long*> x.indices, <const long long*> x.indptr, pb,
                              theta, lo, hi, res, base, buf, loss)
            return _split(<const float*> x.data, <const long long*> x.indices, <const int*> x.indptr, pb, theta,
                          lo, hi, res, base, buf, loss)
        if x.ptr64:
            return _split(<const float*> x.data, <const int*> x.indices, <const long long*> x.indptr, pb, theta,
                          lo, hi, res, base, buf, loss)
        return _split(<const float*> x.data, <const int*> x.indices, <const int*> x.indptr, pb, theta, lo, hi, res,
                      base, buf, loss)
    if x.idx64:
        if x.ptr64:
            return _split(<const double*> x.data, <const long long*> x.indices, <const long long*> x.indptr, pb,
                          theta, lo, hi, res, base, buf, loss)
        return _split(<const double*> x.data, <const long long*> x.indices, <const int*> x.indptr, pb, theta, lo,
                      hi, res, base, buf, loss)
    if x.ptr64:
        return _split(<const double*> x.data, <const int*> x.indices, <const long long*> x.indptr, pb, theta, lo,
                      hi, res, base, buf, loss)
    return _split(<const double*> x.data, <const int*> x.indices, <const int*> x.indptr, pb, theta, lo, hi, res,
                  base, buf, loss)


cdef struct SplitPass:
    # the split CSR pass (fastgd._kernels._split_worker): the problem, the parameters, the blocks (rows [lo, hi)
    # of the batch [start, stop), 4 per block), the two residual buffers (``half`` apart), the sums and the
    # loss of the batch so far
    const Problem* pb
    const double* th
    const long long* blocks
    Py_ssize_t nblocks
    Py_ssize_t shares
    double* res
    Py_ssize_t half
    double* out
    double carry


cdef void _split_worker(SplitPass* sp, fastgd_split* s, fastgd_team* ev, int w) noexcept nogil:
    """Thread ``w`` of the split pass (the protocol of fastgd._kernels._split_worker): until every block is
    summed, sum the next block once its residuals are all in (thread 0, or another that waited for it),
    else compute a residual share of it or of the block after it, else wait for progress."""
    cdef const Problem* pb = sp.pb
    cdef Py_ssize_t S = sp.shares, m = pb.k * (pb.X.d + 1)
    cdef long long g, h, t, seen, lo, hi
    cdef const long long* blk
    cdef bint ready
    cdef int idle = 0
    while True:
        seen = fastgd_published(ev)
        g = fastgd_load(&s.summed)
        if g >= sp.nblocks:
            return
        ready = fastgd_load(&s.done[g % 2]) >= S * (g // 2 + 1) and fastgd_load(&s.sumclaim) == g
        if ready and (w == 0 or idle >= SPINS_BEFORE_SLEEP) and fastgd_take(&s.sumclaim, g):
            idle = 0
            blk = sp.blocks + 4 * g  # block g's sums, in row order, after the batch's blocks before it
            if blk[0] == blk[2]:
                sp.carry = 0.0
            sp.carry = _split_ptr(pb, sp.th, blk[0], blk[1], sp.res + (g % 2) * sp.half, blk[0], sp.out, sp.carry)
            if blk[1] == blk[3]:
                sp.out[m] += sp.carry
                sp.out[m + 1] += batch_weight(pb.sw, pb.weighted, blk[2], blk[3])
            fastgd_store(&s.summed, g + 1)
            fastgd_signal(ev)
            continue
        t = -1
        h = g
        while h < min(g + 2, sp.nblocks):  # block g + 1's buffer is free: block g - 1 is summed
            t = fastgd_ticket(&s.claimed[h % 2], S * (h // 2 + 1))
            if t >= 0:
                break
            h += 1
        if t >= 0:
            idle = 0
            t -= S * (h // 2)  # the share of block h
            blk = sp.blocks + 4 * h
            lo = blk[0] + (blk[1] - blk[0]) * t // S
            hi = blk[0] + (blk[1] - blk[0]) * (t + 1) // S
            _split_ptr(pb, sp.th, lo, hi, sp.res + (h % 2) * sp.half, blk[0], NULL, 0.0)
            fastgd_add(&s.done[h % 2], 1)
            fastgd_signal(ev)
            continue
        if ready:  # thread 0's sum to take: spin, and take it after SPINS_BEFORE_SLEEP turns if it is still there
            idle += 1
            fastgd_pause()
            continue
        fastgd_wait(ev, <int> seen, SPINS_BEFORE_SLEEP)


cdef _split_stats(Problem* pb, const double* th, Py_ssize_t batch_size, const long long* ids, Py_ssize_t nb,
                  Py_ssize_t nnz, int nt):
    """batches_stats of CSR batches in one group on ``nt`` > 1 threads (fastgd._kernels._csr_split_stats): the
    rows in blocks, a block's sums (in row order, by one thread) beside the next block's residuals (shared by
    the others); the one-thread pass's sums bit for bit. One parallel region for the pass, whose threads
    claim their work and wait by spinning briefly, then sleeping (a region per block, whose OpenMP barriers
    spin, made a default sparse fit 4-19x slower than one thread on a busy 2-core host)."""
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = pb.k, m = k * (d + 1)
    cdef Py_ssize_t rows = split_block_rows(nnz, n, k)
    blocks_arr = np.empty((split_block_count(nb, batch_size, rows), 4), dtype=np.int64)
    cdef long long[:, ::1] table = blocks_arr
    cdef Py_ssize_t nblocks = split_blocks(ids, nb, batch_size, n, rows, &table[0, 0]) if table.shape[0] else 0
    out_arr = np.zeros(m + 2)
    cdef Py_ssize_t half = max(rows * k, 1)  # a block's residuals: two buffers, half apart
    res_arr = np.empty(2 * half)
    cdef double[::1] out = out_arr
    cdef double[::1] res = res_arr
    cdef SplitPass sp
    sp.pb = pb
    sp.th = th
    sp.blocks = &table[0, 0] if nblocks > 0 else NULL
    sp.nblocks = nblocks
    sp.shares = max(1, rows // SPLIT_ROWS)
    sp.res = &res[0]
    sp.half = half
    sp.out = &out[0]
    sp.carry = 0.0
    cdef fastgd_split sync
    cdef fastgd_team team
    fastgd_split_init(&sync)
    fastgd_team_init(&team)
    _config.note_team_started()
    with nogil, parallel(num_threads=nt):
        _split_worker(&sp, &sync, &team, threadid())
    return out_arr[:m], float(out[m]), float(out[m + 1])


def batches_stats(X, const double[:, ::1] Y, const double[::1] sw, const double[:, ::1] theta,
                  Py_ssize_t batch_size, const long long[::1] batch_ids, n_threads=None, loss=None):
    """As fastgd._kernels.batches_stats: (G, loss, weight) summed over the listed batches at fixed theta.

    ``n_threads`` as in :func:`predict`; the groups (and so the sums) do not depend on it. ``loss``:
    ``(code, param)``, None for the squared error.
    """
    cdef Problem pb
    cdef Py_ssize_t per, ngroups = _stats_setup(&pb, X, Y, sw, theta, batch_size, batch_ids, loss, &per)
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, m = pb.k * (d + 1), nb = batch_ids.shape[0]
    cdef Py_ssize_t stride = chunk_stride(m), ch = chunk_rows(batch_size, m), g
    cdef const double* th = &theta[0, 0]
    cdef const long long* ids = &batch_ids[0] if nb > 0 else NULL
    cdef int nt
    if pb.X.sparse and ngroups == 1:  # one group's sums would take one thread: split them where threads pay
        nt = region_threads(_threads(n_threads), -(-min(nb * batch_size, n) // SPLIT_ROWS),
                            _work(&pb.X, min(nb * batch_size, n), pb.k))
        if nt > 1:
            return _split_stats(&pb, th, batch_size, ids, nb, int(X[2][n] - X[2][0]), nt)
    nt = region_threads(_threads(n_threads), ngroups, _work(&pb.X, min(nb * batch_size, n), pb.k))
    sums_arr = np.zeros((max(ngroups, 1), stride))
    cdef double[:, ::1] sums = sums_arr
    cdef double* part
    if nt > 1 and ngroups > 1:
        _config.note_team_started()
        with nogil, parallel(num_threads=nt):
            part = alloc_lines(stride)
            for g in prange(ngroups, schedule="static"):
                stats_group(&pb, th, batch_size, ids, g * per, min(g * per + per, nb), ch, part, &sums[g, 0])
            free(part)
    elif ngroups > 0:
        part = alloc_lines(stride)
        if part == NULL:
            raise MemoryError()
        with nogil:
            for g in range(ngroups):  # the same groups as the parallel loop: the same sums, bit for bit
                stats_group(&pb, th, batch_size, ids, g * per, min(g * per + per, nb), ch, part, &sums[g, 0])
        free(part)
    total = np.zeros(m + 2)
    for g in range(ngroups):  # groups added in order, as the Numba kernel does
        total += sums_arr[g, : m + 2]
    return total[:m].copy(), float(total[m]), float(total[m + 1])


def batches_loss(X, const double[:, ::1] Y, const double[::1] sw, const double[:, ::1] theta,
                 Py_ssize_t batch_size, const long long[::1] batch_ids, n_threads=None, loss=None):
    """As fastgd._kernels.batches_loss: (loss, weight) of batches_stats without the gradient sums, its groups
    (_loss_layout's: no budget of k·(d + 1) per group) and order of adds (the same bits), no such buffer."""
    cdef Problem pb
    cdef Py_ssize_t per, ngroups = _stats_setup(&pb, X, Y, sw, theta, batch_size, batch_ids, loss, &per, True)
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, m = pb.k * (d + 1), nb = batch_ids.shape[0]
    cdef Py_ssize_t ch = chunk_rows(batch_size, m), g
    cdef int nt = region_threads(_threads(n_threads), ngroups, _work(&pb.X, min(nb * batch_size, n), pb.k))
    sums_arr = np.zeros((max(ngroups, 1), 8))  # a cache line per group
    cdef double[:, ::1] sums = sums_arr
    cdef const double* th = &theta[0, 0]
    cdef const long long* ids = &batch_ids[0] if nb > 0 else NULL
    if nt > 1 and ngroups > 1:
        _config.note_team_started()
        with nogil:
            for g in prange(ngroups, schedule="static", num_threads=nt):
                loss_group(&pb, th, batch_size, ids, g * per, min(g * per + per, nb), ch, &sums[g, 0])
    elif ngroups > 0:
        with nogil:
            for g in range(ngroups):  # the same groups as the parallel loop: the same sums, bit for bit
                loss_group(&pb, th, batch_size, ids, g * per, min(g * per + per, nb), ch, &sums[g, 0])
    cdef double total = 0.0, weight = 0.0
    for g in range(ngroups):  # groups added in order, as batches_stats does (not regrouped: fastgd_opaque)
        total = fastgd_opaque(total + sums[g, 0])
        weight = fastgd_opaque(weight + sums[g, 1])
    return total, weight


@cython.wraparound(False)
def column_nonzero_weight(X, const double[::1] sw):
    """As fastgd._kernels.column_nonzero_weight: the weight of the rows where each column of dense X is
    non-zero (rows of weight <= 0 count nothing), float64."""
    cdef XView x = make_view(X)
    if x.sparse:
        raise TypeError("column_nonzero_weight takes dense X")
    if sw.shape[0] not in (0, x.n):
        raise ValueError(f"sw must be empty or hold one weight per row ({x.n}), got {sw.shape[0]}")
    out_arr = np.zeros(x.d)
    cdef double[::1] out = out_arr
    cdef const double* swp = &sw[0] if sw.shape[0] > 0 else NULL
    if x.d > 0:
        with nogil:
            if x.f32:
                _nonzero_weight(<const float*> x.data, x.n, x.d, swp, &out[0])
            else:
                _nonzero_weight(<const double*> x.data, x.n, x.d, swp, &out[0])
    return out_arr


cdef void _nonzero_weight(const real_t* X, Py_ssize_t n, Py_ssize_t d, const double* sw,
                          double* out) noexcept nogil:
    """column_nonzero_weight's pass: a row at a time, adding in row order."""
    cdef Py_ssize_t i, j
    cdef double s
    for i in range(n):
        s = sw[i] if sw != NULL else 1.0
        if not s > 0.0:
            continue
        for j in range(d):
            out[j] += s if X[i * d + j] != 0 else 0.0


def column_stats(X, const double[::1] sw, n_threads=None):
    """As fastgd._kernels.column_stats: (mean, var, total weight) of every column, deterministic."""
    cdef XView x = make_view(X)
    if x.sparse:
        return csr_column_stats(X, sw)[:3]
    cdef int nt = _threads(n_threads)
    if sw.shape[0] not in (0, x.n):
        raise ValueError(f"sw must be empty or hold one weight per row ({x.n}), got {sw.shape[0]}")
    cdef Py_ssize_t n = x.n, d = x.d, c
    cdef bint weighted = sw.shape[0] > 0
    cdef const double* swp = &sw[0] if weighted else NULL
    cdef Py_ssize_t rows = stats_rows(n, d)
    cdef Py_ssize_t nch = (n + rows - 1) // rows
    if not x.sparse:
        nt = region_threads(nt, nch, _work(&x, n, 1))
    mean_arr = np.zeros(d)
    m2_arr = np.zeros(d)
    cdef double[::1] mean = mean_arr
    cdef double[::1] m2 = m2_arr
    cdef double total = 0.0
    cmean_arr = np.empty((max(nch, 1), d))  # each chunk's row zeroed by _dense_moments, which writes it first
    cm2_arr = np.empty((max(nch, 1), d))
    cw_arr = np.zeros(max(nch, 1))
    cdef double[:, ::1] cmean = cmean_arr
    cdef double[:, ::1] cm2 = cm2_arr
    cdef double[::1] cw = cw_arr
    if nt > 1:
        _config.note_team_started()
    with nogil:
        if nt > 1:
            for c in prange(nch, schedule="static", num_threads=nt):
                _dense_moments(&x, swp, weighted, c * rows, min(c * rows + rows, n), &cmean[c, 0],
                               &cm2[c, 0], &cw[c])
        else:
            for c in range(nch):
                _dense_moments(&x, swp, weighted, c * rows, min(c * rows + rows, n), &cmean[c, 0],
                               &cm2[c, 0], &cw[c])
        if nch > 0:  # Chan's pairwise merge, in chunk order (fastgd/_rules.py)
            total = chan_merge(&cmean[0, 0], &cm2[0, 0], &cw[0], nch, d, &mean[0], &m2[0])
    var = np.maximum(m2_arr, 0.0) / total if total > 0.0 else np.zeros(d)
    return mean_arr, var, total


def csr_column_stats(X, const double[::1] sw):
    """As fastgd._kernels.csr_column_stats: (mean, var, total, maxabs, stored) of a CSR tuple's columns
    (fastgd._rules.csr_moments; make_view has checked every column index)."""
    cdef XView x = make_view(X)
    if not x.sparse:
        raise ValueError("csr_column_stats takes a CSR tuple")
    if sw.shape[0] not in (0, x.n):
        raise ValueError(f"sw must be empty or hold one weight per row ({x.n}), got {sw.shape[0]}")
    cdef Py_ssize_t n = x.n, d = x.d, i, widest = 0
    for i in range(n):
        widest = max(widest, _index(x.ptr64, x.indptr, i + 1) - _index(x.ptr64, x.indptr, i))
    mean_arr = np.zeros(d)
    m2_arr = np.zeros(d)
    maxabs_arr = np.zeros(d)
    stored_arr = np.zeros(d)
    mark_arr = np.full(d, -1, dtype=np.int64)
    val_arr = np.zeros(d)
    cols_arr = np.empty(max(widest, 1), dtype=np.int64)
    cdef CsrStats st
    st.sw = &sw[0] if sw.shape[0] > 0 else NULL
    st.weighted = sw.shape[0] > 0
    st.mean = <double*> <size_t> mean_arr.ctypes.data
    st.m2 = <double*> <size_t> m2_arr.ctypes.data
    st.maxabs = <double*> <size_t> maxabs_arr.ctypes.data
    st.stored = <double*> <size_t> stored_arr.ctypes.data
    st.mark = <long long*> <size_t> mark_arr.ctypes.data
    st.val = <double*> <size_t> val_arr.ctypes.data
    st.cols = <long long*> <size_t> cols_arr.ctypes.data
    cdef double total
    with nogil:
        if x.f32:
            total = _csr_moments(<const float*> x.data, &x, &st)
        else:
            total = _csr_moments(<const double*> x.data, &x, &st)
    del mark_arr, val_arr, cols_arr
    if total > 0.0:  # the variance in place: no O(d) temporary
        np.maximum(m2_arr, 0.0, out=m2_arr)
        m2_arr /= total
    else:
        m2_arr[:] = 0.0
    return mean_arr, m2_arr, total, maxabs_arr, stored_arr


def batch_column_counts(X, Py_ssize_t batch_size, const long long[::1] batch_ids):
    """As fastgd._kernels.batch_column_counts: how many of the listed batches store each column, as float64
    (fastgd._rules.count_column_batches; make_view has checked every column index)."""
    cdef XView x = make_view(X)
    if not x.sparse:
        raise ValueError("batch_column_counts takes a CSR tuple")
    _check_batches(x.n, batch_size, batch_ids, "batch_ids")
    counts_arr = np.zeros(x.d)
    last_arr = np.full(x.d, -1, dtype=np.int64)
    cdef double* counts = <double*> <size_t> counts_arr.ctypes.data
    cdef long long* last = <long long*> <size_t> last_arr.ctypes.data
    cdef const long long* ids = &batch_ids[0] if batch_ids.shape[0] > 0 else NULL
    cdef Py_ssize_t nids = batch_ids.shape[0]
    with nogil:
        if x.idx64:
            if x.ptr64:
                count_column_batches(<const long long*> x.indices, <const long long*> x.indptr, x.n, batch_size, ids,
                                    nids, last, counts)
            else:
                count_column_batches(<const long long*> x.indices, <const int*> x.indptr, x.n, batch_size, ids, nids,
                                    last, counts)
        elif x.ptr64:
            count_column_batches(<const int*> x.indices, <const long long*> x.indptr, x.n, batch_size, ids, nids,
                                last, counts)
        else:
            count_column_batches(<const int*> x.indices, <const int*> x.indptr, x.n, batch_size, ids, nids, last,
                                counts)
    return counts_arr


cdef struct CsrStats:  # csr_moments' weights, outputs and scratch
    const double* sw
    bint weighted
    double* mean
    double* m2
    double* maxabs
    double* stored
    long long* mark
    double* val
    long long* cols


cdef double _csr_moments(const real_t* data, const XView* x, const CsrStats* s) noexcept nogil:
    """fastgd._rules.csr_moments for X's index types."""
    if x.idx64:
        if x.ptr64:
            return csr_moments(data, <const long long*> x.indices, <const long long*> x.indptr, x.n, x.d, s.sw,
                               s.weighted, s.mean, s.m2, s.maxabs, s.stored, s.mark, s.val, s.cols)
        return csr_moments(data, <const long long*> x.indices, <const int*> x.indptr, x.n, x.d, s.sw, s.weighted,
                           s.mean, s.m2, s.maxabs, s.stored, s.mark, s.val, s.cols)
    if x.ptr64:
        return csr_moments(data, <const int*> x.indices, <const long long*> x.indptr, x.n, x.d, s.sw, s.weighted,
                           s.mean, s.m2, s.maxabs, s.stored, s.mark, s.val, s.cols)
    return csr_moments(data, <const int*> x.indices, <const int*> x.indptr, x.n, x.d, s.sw, s.weighted, s.mean, s.m2,
                       s.maxabs, s.stored, s.mark, s.val, s.cols)


cdef inline Py_ssize_t _index(bint wide, const char* arr, Py_ssize_t q) noexcept nogil:
    return (<const long long*> arr)[q] if wide else (<const int*> arr)[q]


cdef extern from *:
    """
    /* A chunk's column statistics, the twin of fastgd._kernels._dense_moments (a hot loop over X, so written
       per backend, as the row loops): weighted sums of v = x - x0 (x0: the chunk's first row of positive
       weight, a shift close to the mean, so a column with a large offset keeps its small spread), four rows
       per pass over the sums (the loop's cost is its stores to them), the rows about PREFETCH_BYTES ahead
       prefetched (four rows in one loop defeat the hardware's stream detection); then mean = x0 + S1 / w and
       m2 = S2 - S1 (S1 / w) into mean and m2 (zeros on entry). Returns the rows' total weight. */
    #define FASTGD_MOMENTS(NAME, T)                                                                  \
    static double NAME(const T* restrict X, Py_ssize_t n, Py_ssize_t d, const double* restrict sw, int weighted, \
                       Py_ssize_t start, Py_ssize_t stop, double* restrict mean, double* restrict m2) { \
        double w = 0.0, s0, s1, s2, s3, v0, v1, v2, v3, k, t;                                      \
        Py_ssize_t i = start, j;                                                                     \
        Py_ssize_t ahead = (fastgd_tune_prefetch_bytes + d * (Py_ssize_t) sizeof(T) - 1) / (d * (Py_ssize_t) sizeof(T)); \
        Py_ssize_t base = start;  /* the shift: the first row of positive weight */                  \
        while (weighted && base + 1 < stop && !(sw[base] > 0.0)) base++;                             \
        const T* restrict x0 = X + base * d;                                                         \
        if (stop <= start) return w;                                                                 \
        for (; i + 4 <= stop; i += 4) {                                                              \
            const T* restrict r0 = X + i * d;                                                        \
            const T* restrict r1 = r0 + d;                                                           \
            const T* restrict r2 = r1 + d;                                                           \
            const T* restrict r3 = r2 + d;                                                           \
            if (i + ahead + 4 <= n) {                                                                \
                const char* p = (const char*) (r0 + ahead * d);                                      \
                const char* e = (const char*) (r0 + (ahead + 4) * d);                                \
                for (; p < e; p += 64) fastgd_prefetch(p);                                           \
            }                                                                                        \
            s0 = weighted ? sw[i] : 1.0;                                                             \
            s1 = weighted ? sw[i + 1] : 1.0;                                                         \
            s2 = weighted ? sw[i + 2] : 1.0;                                                         \
            s3 = weighted ? sw[i + 3] : 1.0;                                                         \
            w += (s0 + s1) + (s2 + s3);                                                              \
            for (j = 0; j < d; j++) {                                                                \
                k = (double) x0[j];                                                                  \
                v0 = (double) r0[j] - k;                                                             \
                v1 = (double) r1[j] - k;                                                             \
                v2 = (double) r2[j] - k;                                                             \
                v3 = (double) r3[j] - k;                                                             \
                mean[j] += (s0 * v0 + s1 * v1) + (s2 * v2 + s3 * v3);                                \
                m2[j] += (s0 * v0 * v0 + s1 * v1 * v1) + (s2 * v2 * v2 + s3 * v3 * v3);              \
            }                                                                                        \
        }                                                                                            \
        for (; i < stop; i++) {                                                                      \
            s0 = weighted ? sw[i] : 1.0;                                                             \
            w += s0;                                                                                 \
            for (j = 0; j < d; j++) {                                                                \
                v0 = (double) X[i * d + j] - (double) x0[j];                                         \
                mean[j] += s0 * v0;                                                                  \
                m2[j] += s0 * v0 * v0;                                                               \
            }                                                                                        \
        }                                                                                            \
        if (w > 0.0) {                                                                               \
            for (j = 0; j < d; j++) {                                                                \
                t = mean[j];                                                                         \
                mean[j] = (double) x0[j] + t / w;                                                    \
                m2[j] -= t * (t / w);                                                                \
            }                                                                                        \
        }                                                                                            \
        return w;                                                                                    \
    }
    FASTGD_MOMENTS(fastgd_moments_f32, float)
    FASTGD_MOMENTS(fastgd_moments_f64, double)
    """
    double fastgd_moments_f32(const float* X, Py_ssize_t n, Py_ssize_t d, const double* sw, int weighted,
                              Py_ssize_t start, Py_ssize_t stop, double* mean, double* m2) nogil
    double fastgd_moments_f64(const double* X, Py_ssize_t n, Py_ssize_t d, const double* sw, int weighted,
                              Py_ssize_t start, Py_ssize_t stop, double* mean, double* m2) nogil


cdef void _dense_moments(const XView* x, const double* sw, bint weighted, Py_ssize_t start, Py_ssize_t stop,
                         double* mean, double* m2, double* cw) noexcept nogil:
    """Chunk statistics of rows [start, stop) (FASTGD_MOMENTS; one column: fastgd._rules.column_moments) into
    ``mean`` and ``m2``, which are zeroed here first. Written before they are read: the caller's buffers are
    fresh pages (np.empty), and a fresh page read first maps the kernel's shared zero page, which the first
    add then replaces (copy-on-write) with a flush of every CPU's TLB entry for it, an interrupt to each
    member of the team: on the 2-core Xeon VM, 1e6 x 100, two threads, 45 ms a call with 13 ms in the kernel,
    34 ms once written first."""
    memset(mean, 0, x.d * sizeof(double))
    memset(m2, 0, x.d * sizeof(double))
    if x.d == 1:
        if x.f32:
            cw[0] = column_moments(<const float*> x.data, sw, weighted, start, stop, mean, m2)
        else:
            cw[0] = column_moments(<const double*> x.data, sw, weighted, start, stop, mean, m2)
    elif x.f32:
        cw[0] = fastgd_moments_f32(<const float*> x.data, x.n, x.d, sw, weighted, start, stop, mean, m2)
    else:
        cw[0] = fastgd_moments_f64(<const double*> x.data, x.n, x.d, sw, weighted, start, stop, mean, m2)



cdef extern from *:
    """
    /* x, through memory the compiler cannot see into: -fassociative-math may not regroup adds across it.
       The loss-only loops keep the adds of batches_stats' loops (which write buffers between them) so. */
    static inline double fastgd_opaque(double x) { __asm__ volatile("" : "+m"(x)); return x; }
    """
    double fastgd_opaque(double x) nogil


cdef void loss_group(const Problem* pb, const double* th, Py_ssize_t batch_size, const long long* ids,
                     Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t ch, double* out) noexcept nogil:
    """Add the loss and weight of batches ids[lo:hi] into out[0], out[1], in stats_group's order of adds."""
    cdef Py_ssize_t bi, start, stop, c, s0
    cdef const XView* x = &pb.X
    for bi in range(lo, hi):
        start = ids[bi] * batch_size
        stop = min(start + batch_size, x.n)
        if x.sparse:
            if x.f32:
                out[0] += fastgd_opaque(_csr_loss_ptr(<const float*> x.data, x, pb, th, start, stop))
            else:
                out[0] += fastgd_opaque(_csr_loss_ptr(<const double*> x.data, x, pb, th, start, stop))
        else:
            for c in range((stop - start + ch - 1) // ch):
                s0 = start + c * ch
                if x.f32:
                    out[0] += fastgd_opaque(_dense_loss_of(<const float*> x.data, pb, th, s0, min(s0 + ch, stop)))
                else:
                    out[0] += fastgd_opaque(_dense_loss_of(<const double*> x.data, pb, th, s0, min(s0 + ch, stop)))
        out[1] += fastgd_opaque(batch_weight(pb.sw, pb.weighted, start, stop))


cdef double _dense_loss_of(const real_t* X, const Problem* pb, const double* theta, Py_ssize_t start,
                           Py_ssize_t stop) noexcept nogil:
    """_dense_loss in the loop compiled for pb's loss (as _dense_f32; here for both types: no gradient to
    stream, the loss's instructions show in float64 too)."""
    cdef int lcode = pb.lcode
    if lcode == SQUARED_ERROR:
        return _dense_loss(X, <const SquaredErrorLoss*> NULL, pb, theta, start, stop)
    elif lcode == HUBER:
        return _dense_loss(X, <const HuberLoss*> NULL, pb, theta, start, stop)
    elif lcode == EPSILON_INSENSITIVE:
        return _dense_loss(X, <const EpsilonInsensitiveLoss*> NULL, pb, theta, start, stop)
    elif lcode == SQUARED_EPSILON_INSENSITIVE:
        return _dense_loss(X, <const SquaredEpsilonInsensitiveLoss*> NULL, pb, theta, start, stop)
    elif lcode == QUANTILE:
        return _dense_loss(X, <const QuantileLoss*> NULL, pb, theta, start, stop)
    return _dense_loss(X, <const AnyLoss*> NULL, pb, theta, start, stop)


cdef double _dense_loss(const real_t* X, const loss_k* tag, const Problem* pb, const double* theta,
                        Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """A chunk's loss as _dense sums it (outputs outer, rows inner, one running sum), without the gradient."""
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, i, j
    cdef int lcode = _loss_code(tag, pb.lcode)
    cdef double acc, s, loss = 0.0
    for j in range(k):
        for i in range(start, stop):
            if real_t is float:
                acc = fastgd_dot_f32(X + i * d, theta + j * p, d, theta[j * p + d])
            else:
                acc = fastgd_dot_f64(X + i * d, theta + j * p, d, theta[j * p + d])
            s, loss = loss_accumulate(lcode, fastgd_opaque(acc) - pb.Y[i * k + j], pb.la,
                                      pb.sw[i] if pb.weighted else 1.0, loss)
            loss = fastgd_opaque(loss)
            s = fastgd_opaque(s)
    return loss


cdef double _csr_loss(const real_t* data, const index_t* indices, const ptr_t* indptr, const Problem* pb,
                      const double* theta, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """_csr's loss over rows [start, stop) without the gradient: costs the rows' non-zeros. When the
    parameters are too many for a core's cache (LOSS_HINT_MIN_BYTES) those of the values LOSS_AHEAD_VALUES
    ahead in X are hinted (the next rows', which an evaluation in row order reads next; as the lazy epoch),
    in a loop of their own: the sums' loop is compiled as without them (the same vector adds, the same bits)."""
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, i, j, q, lo, hi
    cdef Py_ssize_t end = 0  # hints for the values before end
    if fastgd_tune_lazy_hints and k * p * 8 >= LOSS_HINT_MIN_BYTES:
        end = indptr[pb.X.n]
    cdef double acc, s, sr, loss = 0.0
    for i in range(start, stop):
        s = pb.sw[i] if pb.weighted else 1.0
        lo = indptr[i]
        hi = indptr[i + 1]
        for q in range(lo + LOSS_AHEAD_VALUES, min(hi + LOSS_AHEAD_VALUES, end)):
            for j in range(k):
                fastgd_hint(&theta[j * p + indices[q]])
        for j in range(k):
            acc = _csr_dot(data, indices, lo, hi, theta + j * p, d)
            sr, loss = loss_accumulate(pb.lcode, fastgd_opaque(acc) - pb.Y[i * k + j], pb.la, s, loss)
            loss = fastgd_opaque(loss)
            sr = fastgd_opaque(sr)
    return loss


cdef inline double _csr_loss_ptr(const real_t* data, const XView* x, const Problem* pb, const double* theta,
                                 Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    if x.idx64:
        if x.ptr64:
            return _csr_loss(data, <const long long*> x.indices, <const long long*> x.indptr, pb, theta, start, stop)
        return _csr_loss(data, <const long long*> x.indices, <const int*> x.indptr, pb, theta, start, stop)
    if x.ptr64:
        return _csr_loss(data, <const int*> x.indices, <const long long*> x.indptr, pb, theta, start, stop)
    return _csr_loss(data, <const int*> x.indices, <const int*> x.indptr, pb, theta, start, stop)


cdef void stats_group(const Problem* pb, const double* th, Py_ssize_t batch_size, const long long* ids,
                      Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t ch, double* part, double* out) noexcept nogil:
    """Add the raw sums of batches ids[lo:hi] into ``out`` (m + 2 entries: G, loss, weight)."""
    cdef Py_ssize_t m = pb.k * (pb.X.d + 1), bi, start, stop, c, s0, q
    for bi in range(lo, hi):
        start = ids[bi] * batch_size
        stop = min(start + batch_size, pb.X.n)
        if pb.X.sparse:  # straight into out: no buffer of k·(d + 1) to zero per batch
            if pb.X.f32:
                _csr_ptr(<const float*> pb.X.data, &pb.X, pb, th, start, stop, out, False)
            else:
                _csr_ptr(<const double*> pb.X.data, &pb.X, pb, th, start, stop, out, False)
            out[m + 1] += batch_weight(pb.sw, pb.weighted, start, stop)
            continue
        for c in range((stop - start + ch - 1) // ch):
            s0 = start + c * ch
            chunk_grad(pb, th, s0, min(s0 + ch, stop), part)
            for q in range(m + 1):
                out[q] += part[q]
        out[m + 1] += batch_weight(pb.sw, pb.weighted, start, stop)
