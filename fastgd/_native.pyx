# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
# cython: nonecheck=False, cpow=True
"""Ahead-of-time compiled twin of fastgd._kernels (the Numba kernels), built by CMakeLists.txt.

Same arrays, integer codes and algorithms as fastgd._kernels (see its docstring for the layout), so the two
backends can be checked against each other and against fastgd.reference. The optimizer rules and the
learning-rate schedule are not written here: both backends compile fastgd/_rules.py (this one cimports it
as the extension fastgd._native_rules). The GIL is released for the whole
epoch. With OpenMP, the parallel epoch runs in one parallel region: every thread walks the batches; a
work-shared loop over the batch's fixed 64-row chunks (each into its own padded buffer) ends in OpenMP's
implicit barrier; a one-iteration work-shared loop then lets one thread sum the buffers in chunk order and
apply the update, and its implicit barrier publishes the new weights. Without OpenMP the same code runs on
one thread.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport isfinite
from libc.stdlib cimport free, malloc

from fastgd._native_rules cimport lr_at, raw_theta, update  # fastgd/_rules.py, which Numba jits too

import numpy as np

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTGD_OPENMP 1
    #else
    #define FASTGD_OPENMP 0
    #endif
    """
    int FASTGD_OPENMP

OPENMP = bool(FASTGD_OPENMP)

cdef enum:
    PATH_AUTO, PATH_SEQUENTIAL, PATH_PARALLEL

cdef enum:
    CHUNK_ROWS = 64
    MAX_CHUNKS = 256
    PAD = 8
    PAR_MIN_WORK = 5000
    PREFETCH_BYTES = 4096

CODES = {"PATH_AUTO": PATH_AUTO, "PATH_SEQUENTIAL": PATH_SEQUENTIAL, "PATH_PARALLEL": PATH_PARALLEL,
         "CHUNK_ROWS": CHUNK_ROWS, "MAX_CHUNKS": MAX_CHUNKS, "PAD": PAD, "PAR_MIN_WORK": PAR_MIN_WORK}

ctypedef fused real_t:
    float
    double

ctypedef fused index_t:
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


cdef struct Problem:
    XView X
    const double* Y
    Py_ssize_t k
    const double* sw
    bint weighted


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
    """
    void __builtin_prefetch(const void*) nogil
    double fastgd_fused_f32(const float* row, const float* prev, const double* w, double* buf, double s_prev,
                            Py_ssize_t d, double acc) nogil
    double fastgd_fused_f64(const double* row, const double* prev, const double* w, double* buf, double s_prev,
                            Py_ssize_t d, double acc) nogil



cdef void _dense(const real_t* X, const Problem* pb, const double* theta, Py_ssize_t start, Py_ssize_t stop,
                 double* buf) noexcept nogil:
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, m = k * p, i, j, c, o
    cdef Py_ssize_t n = pb.X.n, ahead = (PREFETCH_BYTES + d * sizeof(real_t) - 1) // (d * sizeof(real_t))
    cdef Py_ssize_t line = 64 // sizeof(real_t)  # elements per cache line
    cdef double acc, r, s_prev, loss = 0.0, bsum
    cdef const real_t* row
    cdef const real_t* prev
    cdef const double* w
    for c in range(m + 1):
        buf[c] = 0.0
    if stop <= start:
        return
    for j in range(k):
        o = j * p
        w = theta + o
        row = X + start * d
        acc = w[d]
        for c in range(d):
            acc = acc + row[c] * w[c]
        r = acc - pb.Y[start * k + j]
        s_prev = pb.sw[start] * r if pb.weighted else r
        loss += s_prev * r
        bsum = s_prev
        for i in range(start + 1, stop):
            if j == 0 and i + ahead < n:  # every cache line of the row PREFETCH_BYTES ahead
                c = 0
                while c < d:
                    __builtin_prefetch(X + (i + ahead) * d + c)
                    c += line
            row = X + i * d
            prev = row - d
            # row i's residual and row i-1's gradient in one pass (as the Numba kernel)
            if real_t is float:
                acc = fastgd_fused_f32(row, prev, w, buf + o, s_prev, d, w[d])
            else:
                acc = fastgd_fused_f64(row, prev, w, buf + o, s_prev, d, w[d])
            r = acc - pb.Y[i * k + j]
            s_prev = pb.sw[i] * r if pb.weighted else r
            loss += s_prev * r
            bsum += s_prev
        row = X + (stop - 1) * d
        for c in range(d):
            buf[o + c] = buf[o + c] + s_prev * row[c]
        buf[o + d] = bsum
    buf[m] = loss


cdef void _csr(const real_t* data, const index_t* indices, const index_t* indptr, const Problem* pb,
               const double* theta, Py_ssize_t start, Py_ssize_t stop, double* buf) noexcept nogil:
    cdef Py_ssize_t d = pb.X.d, k = pb.k, p = d + 1, m = k * p, i, j, q, o, lo, hi
    cdef double acc, r, s, sr, loss = 0.0
    for q in range(m + 1):
        buf[q] = 0.0
    for i in range(start, stop):
        s = pb.sw[i] if pb.weighted else 1.0
        lo = indptr[i]
        hi = indptr[i + 1]
        for j in range(k):
            o = j * p
            acc = theta[o + d]
            for q in range(lo, hi):
                acc = acc + data[q] * theta[o + indices[q]]
            r = acc - pb.Y[i * k + j]
            sr = s * r
            loss += sr * r
            for q in range(lo, hi):
                buf[o + indices[q]] += sr * data[q]
            buf[o + d] += sr
    buf[m] = loss


cdef void chunk_grad(const Problem* pb, const double* theta, Py_ssize_t start, Py_ssize_t stop,
                     double* buf) noexcept nogil:
    """Dispatch on X's storage (dense or CSR), value type and index type; specializations are deduced."""
    cdef const XView* x = &pb.X
    if not x.sparse:
        if x.f32:
            _dense(<const float*> x.data, pb, theta, start, stop, buf)
        else:
            _dense(<const double*> x.data, pb, theta, start, stop, buf)
    elif x.f32:
        if x.idx64:
            _csr(<const float*> x.data, <const long long*> x.indices, <const long long*> x.indptr, pb, theta,
                 start, stop, buf)
        else:
            _csr(<const float*> x.data, <const int*> x.indices, <const int*> x.indptr, pb, theta, start, stop,
                 buf)
    elif x.idx64:
        _csr(<const double*> x.data, <const long long*> x.indices, <const long long*> x.indptr, pb, theta,
             start, stop, buf)
    else:
        _csr(<const double*> x.data, <const int*> x.indices, <const int*> x.indptr, pb, theta, start, stop, buf)


cdef inline Py_ssize_t chunk_rows(Py_ssize_t batch_size) noexcept nogil:
    if batch_size <= CHUNK_ROWS * MAX_CHUNKS:
        return CHUNK_ROWS
    return ((batch_size + MAX_CHUNKS - 1) // MAX_CHUNKS + 7) // 8 * 8


cdef inline Py_ssize_t stride_of(Py_ssize_t m) noexcept nogil:
    return (m + 1 + PAD - 1) // PAD * PAD + PAD


cdef double batch_weight(const Problem* pb, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef double W = 0.0
    cdef Py_ssize_t i
    if not pb.weighted:
        return <double> (stop - start)
    for i in range(start, stop):
        W += pb.sw[i]
    return W


cdef struct Train:
    double* th
    double* S
    double* scalars
    const double* hp
    const double* sched
    double l1
    double l2
    double wnorm  # pen[2]: fixed batch weight to divide by (0: each batch's own)
    int code
    bint fit_intercept
    double* eta
    double loss_sum
    double weight_sum
    const double* stdz  # NULL: no standardization (see _kernels.epoch)
    double* raw  # the parameters in the data's units (tr.th itself when stdz is NULL)
    double* avg  # NULL, or P running means and a count


cdef void finish_batch(Train* tr, double* G, double W, Py_ssize_t k, Py_ssize_t d) noexcept nogil:
    """Scale the raw sums, add the l2 gradient, update, the l1 proximal step, average (as _kernels._finish_batch)."""
    cdef Py_ssize_t p = d + 1, P = k * p, j, c, o, q
    cdef double scale, thr, v, ys, gb, xs, cnt
    cdef const double* z = tr.stdz
    if not W > 0.0:
        return
    tr.loss_sum += G[P]
    tr.weight_sum += W
    scale = 2.0 / (tr.wnorm if tr.wnorm > 0.0 else W)  # as _kernels._finish_batch
    for j in range(k):
        o = j * p
        if z != NULL:
            ys = z[2 * d + k + j]
            gb = G[o + d]
            for c in range(d):
                xs = z[d + c]
                G[o + c] = (G[o + c] - z[c] * gb) * (scale / (xs * ys)) + (tr.l2 / (xs * xs)) * tr.th[o + c]
            G[o + d] = gb * (scale / ys) if tr.fit_intercept else 0.0
        else:
            for c in range(d):
                G[o + c] = G[o + c] * scale + tr.l2 * tr.th[o + c]
            G[o + d] = G[o + d] * scale if tr.fit_intercept else 0.0
    tr.scalars[0] += 1.0
    update(tr.code, tr.th, G, tr.S, P, tr.scalars, tr.hp, lr_at(tr.hp[0], tr.sched, tr.scalars[0]), tr.eta,
           tr.l1 > 0.0)
    if tr.l1 > 0.0:
        for j in range(k):
            o = j * p
            for c in range(d):
                thr = tr.eta[o + c] * tr.l1
                if z != NULL:
                    thr = thr / (z[2 * d + k + j] * z[d + c])
                v = tr.th[o + c]
                tr.th[o + c] = v - thr if v > thr else (v + thr if v < -thr else 0.0)
    if z != NULL:
        raw_theta(tr.th, z, k, d, tr.raw)
    if tr.avg != NULL:
        cnt = tr.avg[P] + 1.0
        tr.avg[P] = cnt
        for q in range(P):
            tr.avg[q] += (tr.th[q] - tr.avg[q]) / cnt


cdef void sum_chunks(const double* part, Py_ssize_t nch, Py_ssize_t stride, Py_ssize_t m,
                     double* G) noexcept nogil:
    cdef Py_ssize_t c, q
    for q in range(m + 1):
        G[q] = 0.0
    for c in range(nch):  # fixed summation order
        for q in range(m + 1):
            G[q] += part[c * stride + q]


# ----------------------------------------------------------------------------------------------------------
# Python entry points (same signatures as fastgd._kernels)


cdef XView make_view(X) except *:
    cdef XView v
    cdef object data
    if isinstance(X, tuple):
        data, indices, indptr, d = X
        v.sparse = True
        v.data = <const char*> <size_t> data.ctypes.data
        v.indices = <const char*> <size_t> indices.ctypes.data
        v.indptr = <const char*> <size_t> indptr.ctypes.data
        v.n = indptr.shape[0] - 1
        v.d = d
        v.idx64 = indices.dtype.itemsize == 8
        if indptr.dtype != indices.dtype:
            raise ValueError("CSR indices and indptr must share a dtype")
    else:
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
    if data.dtype == np.float32:
        v.f32 = True
    elif data.dtype == np.float64:
        v.f32 = False
    else:
        raise ValueError(f"X must hold float32 or float64 values, got {data.dtype}")
    return v


def epoch(X, const double[:, ::1] Y, const double[::1] sw, double[:, ::1] theta, double[:, ::1] state,
          double[::1] scalars, int code, const double[::1] hp, const double[::1] sched, const double[::1] pen,
          bint fit_intercept, Py_ssize_t batch_size, const long long[::1] order, int n_threads, int path,
          const double[::1] stdz, double[::1] avg):
    """One fused epoch; arguments and return value as fastgd._kernels.epoch."""
    cdef Problem pb
    cdef Train tr
    pb.X = make_view(X)
    pb.Y = &Y[0, 0]
    pb.k = Y.shape[1]
    pb.weighted = sw.shape[0] > 0
    pb.sw = &sw[0] if pb.weighted else NULL
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = pb.k, P = k * (d + 1), m = P
    cdef Py_ssize_t ch = chunk_rows(batch_size), nch_max = (batch_size + ch - 1) // ch
    cdef Py_ssize_t stride = stride_of(m), nb = order.shape[0], bi, c, start, stop, nch, s0, one, q
    cdef bint use_par = nch_max > 1 and (path == PATH_PARALLEL or (
        path == PATH_AUTO and n_threads > 1 and batch_size * d * k >= PAR_MIN_WORK))
    if theta.shape[0] != k or theta.shape[1] != d + 1 or Y.shape[0] != n:
        raise ValueError("theta, X and Y shapes do not match")
    tr.th = &theta[0, 0]
    tr.S = &state[0, 0] if state.shape[0] > 0 else NULL
    tr.scalars = &scalars[0]
    tr.hp = &hp[0]
    tr.sched = &sched[0]
    tr.l1 = pen[0]
    tr.l2 = pen[1]
    tr.wnorm = pen[2] if pen.shape[0] > 2 else 0.0
    tr.code = code
    tr.fit_intercept = fit_intercept
    tr.loss_sum = 0.0
    tr.weight_sum = 0.0
    if stdz.shape[0] not in (0, 2 * d + 2 * k):
        raise ValueError(f"stdz must be empty or hold 2*d + 2*k = {2 * d + 2 * k} values, got {stdz.shape[0]}")
    if avg.shape[0] not in (0, P + 1):
        raise ValueError(f"avg must be empty or hold k*(d+1) + 1 = {P + 1} values, got {avg.shape[0]}")
    tr.stdz = &stdz[0] if stdz.shape[0] > 0 else NULL
    tr.avg = &avg[0] if avg.shape[0] > 0 else NULL
    raw_arr = np.empty((k, d + 1)) if tr.stdz != NULL else None
    cdef double[:, ::1] raw_view
    if tr.stdz != NULL:
        raw_view = raw_arr
        tr.raw = &raw_view[0, 0]
        raw_theta(tr.th, tr.stdz, k, d, tr.raw)
    else:
        tr.raw = tr.th
    cdef double* part = <double*> malloc((nch_max if use_par else 1) * stride * sizeof(double))
    cdef double* G = <double*> malloc((m + 1) * sizeof(double))
    tr.eta = <double*> malloc(P * sizeof(double))
    if part == NULL or G == NULL or tr.eta == NULL:
        free(part)
        free(G)
        free(tr.eta)
        raise MemoryError()
    cdef const long long* order_p = &order[0] if nb > 0 else NULL
    cdef double W
    try:
        with nogil:
            if use_par:
                with parallel(num_threads=max(n_threads, 1)):
                    for bi in range(nb):  # every thread walks the batches
                        start = order_p[bi] * batch_size
                        stop = min(start + batch_size, n)
                        nch = (stop - start + ch - 1) // ch
                        for c in prange(nch, schedule="static"):  # chunks shared out; barrier at the end
                            s0 = start + c * ch
                            chunk_grad(&pb, tr.raw, s0, min(s0 + ch, stop), part + c * stride)
                        for one in prange(1, schedule="static"):  # one thread reduces and updates; barrier
                            sum_chunks(part, nch, stride, m, G)
                            finish_batch(&tr, G, batch_weight(&pb, start, stop), k, d)
            else:
                for bi in range(nb):
                    start = order_p[bi] * batch_size
                    stop = min(start + batch_size, n)
                    nch = (stop - start + ch - 1) // ch
                    for q in range(m + 1):
                        G[q] = 0.0
                    for c in range(nch):  # the same chunks in the same order
                        s0 = start + c * ch
                        chunk_grad(&pb, tr.raw, s0, min(s0 + ch, stop), part)
                        for q in range(m + 1):
                            G[q] += part[q]
                    finish_batch(&tr, G, batch_weight(&pb, start, stop), k, d)
    finally:
        free(part)
        free(G)
        free(tr.eta)
    finite = True
    for q in range(P):
        if not isfinite(tr.th[q]):
            finite = False
    return tr.loss_sum, tr.weight_sum, finite


def predict(X, const double[:, ::1] theta):
    """(n, k) predictions for a dense array or a CSR tuple, float64, without converting X."""
    cdef Problem pb
    pb.X = make_view(X)
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, k = theta.shape[0], i, j, q
    out = np.empty((n, k))
    cdef double[:, ::1] o = out
    cdef double acc
    cdef const double* th = &theta[0, 0]
    with nogil:
        for i in prange(n, schedule="static"):
            for j in range(k):
                acc = row_dot(&pb.X, i, th + j * (d + 1), d)
                o[i, j] = acc
    return out


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
    if x.idx64:
        for q in range((<const long long*> x.indptr)[i], (<const long long*> x.indptr)[i + 1]):
            acc = acc + _value(x, q) * w[(<const long long*> x.indices)[q]]
    else:
        for q in range((<const int*> x.indptr)[i], (<const int*> x.indptr)[i + 1]):
            acc = acc + _value(x, q) * w[(<const int*> x.indices)[q]]
    return acc


cdef inline double _value(const XView* x, Py_ssize_t q) noexcept nogil:
    return (<const float*> x.data)[q] if x.f32 else (<const double*> x.data)[q]


def batches_stats(X, const double[:, ::1] Y, const double[::1] sw, const double[:, ::1] theta,
                  Py_ssize_t batch_size, const long long[::1] batch_ids):
    """As fastgd._kernels.batches_stats: (G, loss, weight) summed over the listed batches at fixed theta."""
    cdef Problem pb
    pb.X = make_view(X)
    pb.Y = &Y[0, 0]
    pb.k = Y.shape[1]
    pb.weighted = sw.shape[0] > 0
    pb.sw = &sw[0] if pb.weighted else NULL
    cdef Py_ssize_t n = pb.X.n, d = pb.X.d, m = pb.k * (d + 1), nb = batch_ids.shape[0]
    cdef Py_ssize_t per = max(1, (nb + MAX_CHUNKS - 1) // MAX_CHUNKS), ngroups = (nb + per - 1) // per
    cdef Py_ssize_t stride = stride_of(m), ch = chunk_rows(batch_size), g, bi, start, stop, c, s0, q
    sums_arr = np.zeros((max(ngroups, 1), stride))
    cdef double[:, ::1] sums = sums_arr
    cdef double* part
    cdef const double* th = &theta[0, 0]
    with nogil, parallel():
        part = <double*> malloc(stride * sizeof(double))
        for g in prange(ngroups, schedule="static"):
            for bi in range(g * per, min(g * per + per, nb)):
                start = batch_ids[bi] * batch_size
                stop = min(start + batch_size, n)
                for c in range((stop - start + ch - 1) // ch):
                    s0 = start + c * ch
                    chunk_grad(&pb, th, s0, min(s0 + ch, stop), part)
                    for q in range(m + 1):
                        sums[g, q] += part[q]
                sums[g, m + 1] += batch_weight(&pb, start, stop)
        free(part)
    total = np.zeros(m + 2)
    for g in range(ngroups):  # groups added in order, as the Numba kernel does
        total += sums_arr[g, : m + 2]
    return total[:m].copy(), float(total[m]), float(total[m + 1])


cdef enum:
    STATS_ROWS = 4096


def column_stats(X, const double[::1] sw):
    """As fastgd._kernels.column_stats: (mean, var, total weight) of every column, deterministic."""
    cdef XView x = make_view(X)
    cdef Py_ssize_t n = x.n, d = x.d, i, j, c, q, lo, hi, col
    cdef bint weighted = sw.shape[0] > 0
    cdef const double* swp = &sw[0] if weighted else NULL
    cdef Py_ssize_t rows = max(<Py_ssize_t> STATS_ROWS, (n + MAX_CHUNKS - 1) // MAX_CHUNKS)
    cdef Py_ssize_t nch = (n + rows - 1) // rows
    mean_arr = np.zeros(d)
    m2_arr = np.zeros(d)
    cdef double[::1] mean = mean_arr
    cdef double[::1] m2 = m2_arr
    cdef double total = 0.0, s, v, wc, new, delta
    cmean_arr = np.zeros((max(nch, 1), d))
    cm2_arr = np.zeros((max(nch, 1), d))
    cw_arr = np.zeros(max(nch, 1))
    cdef double[:, ::1] cmean = cmean_arr
    cdef double[:, ::1] cm2 = cm2_arr
    cdef double[::1] cw = cw_arr
    if x.sparse:
        with nogil:
            for i in range(n):
                s = swp[i] if weighted else 1.0
                total += s
                lo = _index(&x, x.indptr, i)
                hi = _index(&x, x.indptr, i + 1)
                for q in range(lo, hi):
                    v = _value(&x, q)
                    col = _index(&x, x.indices, q)
                    mean[col] += s * v
                    m2[col] += s * v * v
            if total > 0.0:
                for j in range(d):
                    mean[j] = mean[j] / total
                    m2[j] -= total * mean[j] * mean[j]
    else:
        with nogil:
            for c in prange(nch, schedule="static"):
                _dense_moments(&x, swp, weighted, c * rows, min(c * rows + rows, n), &cmean[c, 0], &cm2[c, 0],
                               &cw[c])
            for c in range(nch):  # Chan's pairwise merge, in chunk order
                wc = cw[c]
                if wc <= 0.0:
                    continue
                new = total + wc
                for j in range(d):
                    delta = cmean[c, j] - mean[j]
                    mean[j] += delta * (wc / new)
                    m2[j] += cm2[c, j] + delta * delta * (total * wc / new)
                total = new
    var = np.maximum(m2_arr, 0.0) / total if total > 0.0 else np.zeros(d)
    return mean_arr, var, total


cdef inline Py_ssize_t _index(const XView* x, const char* arr, Py_ssize_t q) noexcept nogil:
    return (<const long long*> arr)[q] if x.idx64 else (<const int*> arr)[q]


cdef void _dense_moments(const XView* x, const double* sw, bint weighted, Py_ssize_t start, Py_ssize_t stop,
                         double* mean, double* m2, double* cw) noexcept nogil:
    cdef Py_ssize_t d = x.d, i, j
    cdef double w = 0.0, s, r, v
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        w += s
        for j in range(d):
            mean[j] += s * _dense_value(x, i * d + j)
    cw[0] = w
    if w <= 0.0:
        return
    for j in range(d):
        mean[j] /= w
    for i in range(start, stop):
        s = sw[i] if weighted else 1.0
        for j in range(d):
            r = _dense_value(x, i * d + j) - mean[j]
            m2[j] += s * r * r


cdef inline double _dense_value(const XView* x, Py_ssize_t q) noexcept nogil:
    return (<const float*> x.data)[q] if x.f32 else (<const double*> x.data)[q]
