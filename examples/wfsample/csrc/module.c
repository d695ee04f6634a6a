/* wfsample._kernels: the Python module. Dispatches to the compiled ISA paths the running CPU has. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static int cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit) {
    unsigned r[4] = {0, 0, 0, 0};
    if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
    return (r[reg] >> bit) & 1;
}
enum { EAX, EBX, ECX, EDX };
static int cpu_has(const char *path) {
    __builtin_cpu_init();
    if (!strcmp(path, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(path, "avx512")) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                                        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    if (!strcmp(path, "avx512vnni")) return __builtin_cpu_supports("avx512f") && cpuid_bit(7, 0, ECX, 11);
    if (!strcmp(path, "avx512bf16")) return __builtin_cpu_supports("avx512f") && cpuid_bit(7, 1, EAX, 5);
    if (!strcmp(path, "amxbf16")) return cpuid_bit(7, 0, EDX, 22) && cpuid_bit(7, 0, EDX, 24);
    return !strcmp(path, "scalar");
}
#else
static int cpu_has(const char *path) { return !strcmp(path, "scalar") || !strcmp(path, "neon"); }
#endif

/* The ISA paths compiled into this build, best first within each kernel family. */
static const char *const compiled_paths[] = {
#ifdef WFSAMPLE_HAVE_AMXBF16
    "amxbf16",
#endif
#ifdef WFSAMPLE_HAVE_AVX512BF16
    "avx512bf16",
#endif
#ifdef WFSAMPLE_HAVE_AVX512VNNI
    "avx512vnni",
#endif
#ifdef WFSAMPLE_HAVE_AVX512
    "avx512",
#endif
#ifdef WFSAMPLE_HAVE_AVX2
    "avx2",
#endif
#ifdef WFSAMPLE_HAVE_NEON
    "neon",
#endif
    "scalar",
};
#define N_PATHS (sizeof compiled_paths / sizeof compiled_paths[0])

static int compiled(const char *path) {
    for (size_t i = 0; i < N_PATHS; i++) if (!strcmp(compiled_paths[i], path)) return 1;
    return 0;
}

/* Resolves the requested path (NULL: best usable among `family`), raising a Python error if unusable. */
static const char *choose(const char *requested, const char *const *family) {
    if (requested) {
        int member = 0;
        for (const char *const *f = family; *f; f++) if (!strcmp(*f, requested)) member = 1;
        if (!member) { PyErr_Format(PyExc_ValueError, "path '%s' does not implement this kernel", requested); return NULL; }
        if (!compiled(requested)) { PyErr_Format(PyExc_ValueError, "path '%s' was not compiled into this build", requested); return NULL; }
        if (!cpu_has(requested)) { PyErr_Format(PyExc_RuntimeError, "this CPU cannot run path '%s'", requested); return NULL; }
        return requested;
    }
    for (const char *const *f = family; *f; f++) if (compiled(*f) && cpu_has(*f)) return *f;
    return "scalar";
}

/* Only functions of the stable ABI (no PySequence_Fast_* or PyTuple_SET_ITEM macros), so the same
 * source builds with and without Py_LIMITED_API (WFSAMPLE_ABI3). */
static int to_floats(PyObject *seq, float **out, Py_ssize_t *n) {
    PyObject *list = PySequence_List(seq);
    if (!list) return -1;
    *n = PyList_Size(list);
    *out = malloc(sizeof(float) * (size_t)(*n ? *n : 1));
    if (!*out) { Py_DECREF(list); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < *n; i++) {
        double v = PyFloat_AsDouble(PyList_GetItem(list, i));   /* borrowed */
        if (v == -1.0 && PyErr_Occurred()) { free(*out); Py_DECREF(list); return -1; }
        (*out)[i] = (float)v;
    }
    Py_DECREF(list);
    return 0;
}

static int two_vectors(PyObject *args, PyObject *kwargs, float **a, float **b, Py_ssize_t *n, const char **path) {
    static char *kwlist[] = {"a", "b", "path", NULL};
    PyObject *pa, *pb;
    *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|z", kwlist, &pa, &pb, path)) return -1;
    Py_ssize_t na, nb;
    if (to_floats(pa, a, &na)) return -1;
    if (to_floats(pb, b, &nb)) { free(*a); return -1; }
    if (na != nb) {
        free(*a); free(*b);
        PyErr_Format(PyExc_ValueError, "vectors differ in length: %zd and %zd", na, nb);
        return -1;
    }
    *n = na;
    return 0;
}

static const char *const dot_family[] = {"avx512", "avx2", "neon", "scalar", NULL};
static const char *const bf16_family[] = {"amxbf16", "avx512bf16", "scalar", NULL};
static const char *const u8s8_family[] = {"avx512vnni", "neon", "scalar", NULL};

static PyObject *py_dot(PyObject *self, PyObject *args, PyObject *kwargs) {
    float *a, *b; Py_ssize_t n; const char *req;
    if (two_vectors(args, kwargs, &a, &b, &n, &req)) return NULL;
    const char *path = choose(req, dot_family);
    float r = 0;
    if (!path) { free(a); free(b); return NULL; }
#ifdef WFSAMPLE_HAVE_AVX512
    else if (!strcmp(path, "avx512")) r = wf_dot_avx512(a, b, (size_t)n);
#endif
#ifdef WFSAMPLE_HAVE_AVX2
    else if (!strcmp(path, "avx2")) r = wf_dot_avx2(a, b, (size_t)n);
#endif
#ifdef WFSAMPLE_HAVE_NEON
    else if (!strcmp(path, "neon")) r = wf_dot_neon(a, b, (size_t)n);
#endif
    else r = wf_dot_scalar(a, b, (size_t)n);
    free(a); free(b);
    return PyFloat_FromDouble(r);
}

static PyObject *py_dot_bf16(PyObject *self, PyObject *args, PyObject *kwargs) {
    float *a, *b; Py_ssize_t n; const char *req;
    if (two_vectors(args, kwargs, &a, &b, &n, &req)) return NULL;
    const char *path = choose(req, bf16_family);
    float r = 0;
    if (!path) { free(a); free(b); return NULL; }
#ifdef WFSAMPLE_HAVE_AMXBF16
    else if (!strcmp(path, "amxbf16")) {
        if (wf_dot_bf16_amx(a, b, (size_t)n, &r) != 0) {
            free(a); free(b);
            return PyErr_Format(PyExc_RuntimeError, "the kernel refused AMX tile state to this process");
        }
    }
#endif
#ifdef WFSAMPLE_HAVE_AVX512BF16
    else if (!strcmp(path, "avx512bf16")) r = wf_dot_bf16_avx512bf16(a, b, (size_t)n);
#endif
    else r = wf_dot_bf16_scalar(a, b, (size_t)n);
    free(a); free(b);
    return PyFloat_FromDouble(r);
}

static PyObject *py_dot_u8s8(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"a", "b", "path", NULL};
    Py_buffer a, b;
    const char *req = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*|z", kwlist, &a, &b, &req)) return NULL;
    PyObject *result = NULL;
    if (a.len != b.len) {
        PyErr_Format(PyExc_ValueError, "vectors differ in length: %zd and %zd", a.len, b.len);
    } else {
        const char *path = choose(req, u8s8_family);
        const uint8_t *pa = a.buf; const int8_t *pb = b.buf; size_t n = (size_t)a.len;
        int32_t r = 0;
        if (!path) goto done;
#ifdef WFSAMPLE_HAVE_AVX512VNNI
        else if (!strcmp(path, "avx512vnni")) r = wf_dot_u8s8_avx512vnni(pa, pb, n);
#endif
#ifdef WFSAMPLE_HAVE_NEON
        else if (!strcmp(path, "neon")) r = wf_dot_u8s8_neon(pa, pb, n);
#endif
        else r = wf_dot_u8s8_scalar(pa, pb, n);
        result = PyLong_FromLong(r);
    }
done:
    PyBuffer_Release(&a); PyBuffer_Release(&b);
    return result;
}

static PyObject *py_isa(PyObject *self, PyObject *unused) {
    PyObject *t = PyTuple_New((Py_ssize_t)N_PATHS);
    if (!t) return NULL;
    for (size_t i = 0; i < N_PATHS; i++) {
        PyObject *name = PyUnicode_FromString(compiled_paths[i]);
        if (!name || PyTuple_SetItem(t, (Py_ssize_t)i, name)) { Py_DECREF(t); return NULL; }
    }
    return t;
}

static PyObject *py_usable(PyObject *self, PyObject *arg) {
    const char *path = PyUnicode_AsUTF8AndSize(arg, NULL);   /* stable ABI since 3.10 (PyUnicode_AsUTF8: 3.13) */
    if (!path) return NULL;
    return PyBool_FromLong(compiled(path) && cpu_has(path));
}

static PyMethodDef methods[] = {
    {"dot", (PyCFunction)(void (*)(void))py_dot, METH_VARARGS | METH_KEYWORDS,
     "dot(a, b, path=None) -> float: float32 dot product on the best usable path (or `path`)."},
    {"dot_bf16", (PyCFunction)(void (*)(void))py_dot_bf16, METH_VARARGS | METH_KEYWORDS,
     "dot_bf16(a, b, path=None) -> float: dot product of the inputs rounded to bfloat16."},
    {"dot_u8s8", (PyCFunction)(void (*)(void))py_dot_u8s8, METH_VARARGS | METH_KEYWORDS,
     "dot_u8s8(a: bytes, b: bytes, path=None) -> int: unsigned-by-signed byte dot product."},
    {"isa", py_isa, METH_NOARGS, "isa() -> tuple[str, ...]: the ISA paths compiled into this build."},
    {"usable", py_usable, METH_O, "usable(path) -> bool: compiled in and supported by this CPU."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "wfsample._kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
