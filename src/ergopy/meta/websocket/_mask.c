/* ergopy.meta.websocket._mask: RFC 6455 §5.3 masking in C, eight bytes at a time.
 *
 * Optional: setuptools builds it when a C compiler is there, and engine.py falls back to
 * its pure Python unmask (one big-integer XOR) when it is not. Both give the same bytes
 * (tests/test_ws_upgrade.py compares them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

PyDoc_STRVAR(unmask_doc,
"unmask(key, payload) -> bytes\n\n"
"``payload`` XOR the 4-byte ``key`` repeated (RFC 6455 §5.3); masking and unmasking alike.\n"
"Raises ValueError when ``key`` is not 4 bytes, TypeError when an argument is not\n"
"bytes-like, BufferError when it is not contiguous.");

static PyObject *
unmask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer key, data;
    PyObject *out = NULL;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "unmask() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &key, PyBUF_SIMPLE) < 0)
        return NULL;
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "the masking key must be 4 bytes");
        PyBuffer_Release(&key);
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&key);
        return NULL;
    }
    out = PyBytes_FromStringAndSize(NULL, data.len);
    if (out != NULL) {
        const uint8_t *k = (const uint8_t *)key.buf;
        const uint8_t *src = (const uint8_t *)data.buf;
        uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
        Py_ssize_t n = data.len, i = 0;
        uint8_t k8[8];
        uint64_t k64, x;

        /* bytes in memory order on both sides: right on either endianness */
        memcpy(k8, k, 4);
        memcpy(k8 + 4, k, 4);
        memcpy(&k64, k8, 8);
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, src + i, 8);
            x ^= k64;
            memcpy(dst + i, &x, 8);
        }
        for (; i < n; i++)
            dst[i] = src[i] ^ k[i & 3];
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return out;
}

static PyMethodDef methods[] = {
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL, unmask_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "ergopy.meta.websocket._mask",
    "RFC 6455 masking in C (optional; engine.py has the pure Python fallback).",
    0,
    methods,
};

PyMODINIT_FUNC
PyInit__mask(void)
{
    return PyModule_Create(&module);
}
