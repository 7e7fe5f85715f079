/* The rel32 scan of x86-64 code, compiled: the same bytes as pipdelta/native/scan.py, a hundred times faster. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint64_t load64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) v = (v << 8) | p[k];
    return v;
}

/* Address a moved through the map: the last piece starting at or below a adds its delta (modulo 2**64). */
static uint64_t mapped(uint64_t a, const unsigned char *starts, const unsigned char *deltas, Py_ssize_t n) {
    Py_ssize_t lo = 0, hi = n; /* first piece starting above a */
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (load64(starts + 8 * mid) <= a) lo = mid + 1; else hi = mid;
    }
    return lo == 0 ? a : a + load64(deltas + 8 * (lo - 1));
}

static int is_modrm_op(unsigned char b) {
    switch (b) {
    case 0x03: case 0x2B: case 0x39: case 0x3B: case 0x63: case 0x85: case 0x89: case 0x8B: case 0x8D: return 1;
    default: return 0;
    }
}

static int is_sse_op(unsigned char b) {
    switch (b) {
    case 0x10: case 0x11: case 0x12: case 0x16: case 0x28: case 0x29: case 0x2E: case 0x2F: case 0x54: case 0x57:
    case 0x58: case 0x59: case 0x5C: case 0x5E: case 0x6E: case 0x6F: case 0x7E: case 0x7F: case 0xD6: return 1;
    default: return 0;
    }
}

/* Where the displacement of an instruction of the table starting at i lies, or 0 (scan.displacement_at). */
static Py_ssize_t displacement_at(const unsigned char *code, Py_ssize_t i, Py_ssize_t end) {
    unsigned char op = code[i];
    if (op == 0xE8 || op == 0xE9) return i + 1;
    if (i + 1 >= end) return 0;
    unsigned char nxt = code[i + 1];
    if ((op == 0x0F && nxt >= 0x80 && nxt <= 0x8F) || (op == 0xFF && (nxt == 0x15 || nxt == 0x25))) return i + 2;
    if ((op == 0x48 || op == 0x4C) && is_modrm_op(nxt) && i + 2 < end && (code[i + 2] & 0xC7) == 0x05) return i + 3;
    if (op == 0x0F && is_sse_op(nxt) && i + 2 < end && (code[i + 2] & 0xC7) == 0x05) return i + 3;
    return 0;
}

static PyObject *rel32(PyObject *self, PyObject *args) {
    Py_buffer code, starts, deltas;
    Py_ssize_t start, end;
    unsigned long long vaddr, low, high;
    if (!PyArg_ParseTuple(args, "w*nnKKKy*y*", &code, &start, &end, &vaddr, &low, &high, &starts, &deltas))
        return NULL;
    PyObject *result = NULL;
    if (start < 0 || end > code.len || start > end || starts.len % 8 || starts.len != deltas.len) {
        PyErr_SetString(PyExc_ValueError, "rel32: bounds or map out of shape");
        goto done;
    }
    unsigned char *c = code.buf;
    const unsigned char *s = starts.buf, *d = deltas.buf;
    Py_ssize_t n = starts.len / 8, i = start, rewritten = 0;
    Py_BEGIN_ALLOW_THREADS
    while (i < end) {
        Py_ssize_t at = displacement_at(c, i, end);
        if (!at || at + 4 > end) { i++; continue; }
        uint64_t site = (uint64_t)vaddr + (uint64_t)(at + 4 - start);
        int32_t disp = (int32_t)((uint32_t)c[at] | (uint32_t)c[at + 1] << 8 | (uint32_t)c[at + 2] << 16 | (uint32_t)c[at + 3] << 24);
        uint64_t target = site + (uint64_t)(int64_t)disp;
        if (target < low || target >= high) { i++; continue; }
        int64_t moved = (int64_t)(mapped(target, s, d, n) - mapped(site, s, d, n));
        if (moved >= INT32_MIN && moved <= INT32_MAX) {
            uint32_t u = (uint32_t)(int32_t)moved;
            c[at] = u & 0xFF; c[at + 1] = (u >> 8) & 0xFF; c[at + 2] = (u >> 16) & 0xFF; c[at + 3] = u >> 24;
            rewritten++;
        }
        i = at + 4;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(rewritten);
done:
    PyBuffer_Release(&code);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&deltas);
    return result;
}

static PyMethodDef methods[] = {
    {"rel32", rel32, METH_VARARGS, "rel32(code, start, end, vaddr, low, high, starts, deltas) -> rewritten"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "The compiled rel32 scan.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
