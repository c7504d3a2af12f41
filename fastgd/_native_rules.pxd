from cython cimport floating

# The C declarations of fastgd/_rules.py as CMakeLists.txt compiles it (Cython, pure-Python mode) into the
# extension fastgd._native_rules: the functions fastgd._native cimports. They must match _rules.py's
# annotations (Cython checks); the rules themselves are declared in _rules.py only.

cdef void update(int code, double* th, const double* G, double* S, Py_ssize_t P, double* scalars,
                 const double* hp, double lr, double* eta, bint want_eta) noexcept nogil
cdef double lr_at(double lr, const double* sched, double t) noexcept nogil
cdef void raw_theta(const double* th, const double* stdz, Py_ssize_t k, Py_ssize_t d, double* raw) noexcept nogil
cdef double chan_merge(const double* cmean, const double* cm2, const double* cw, Py_ssize_t nch, Py_ssize_t d,
                       double* mean, double* m2) noexcept nogil
cdef double dense_moments(const floating* X, const double* sw, bint weighted, Py_ssize_t start, Py_ssize_t stop,
                          Py_ssize_t d, double* mean, double* m2) noexcept nogil
cdef double loss_value(int code, double r, double a) noexcept nogil
cdef double loss_slope(int code, double r, double a) noexcept nogil
cdef double loss_y_power(int code) noexcept nogil
cdef double loss_terms(int code, double r, double a, double s, double* value) noexcept nogil
