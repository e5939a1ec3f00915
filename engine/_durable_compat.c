/*
 * What Python 3.13 removed and durable_rules 2.0.28 still links against.
 *
 * durable_rules' extension (its last release, 2020) calls PyEval_CallObject, deprecated since
 * Python 3.9 and removed from the C API in 3.13. On 3.13 it compiles (with an implicit-declaration
 * warning) but cannot be imported: "undefined symbol: PyEval_CallObject". This module supplies that
 * one symbol. engine/rete.py imports it with RTLD_GLOBAL before durable's extension, only on
 * Python >= 3.13, so the dynamic linker resolves durable's reference here. It is the only removed
 * symbol durable uses (the others: PyArg_ParseTuple, PyErr_NewException, PyErr_NoMemory,
 * PyErr_SetString, PyLong_AsLong, PyModule_AddObject, PyModule_Create2, Py_BuildValue).
 *
 * durable calls it only from the callbacks of external message stores (set_store_message_callback
 * and its siblings), which verdict never registers: its compiled callers declare the function
 * implicitly (returning int), so those callbacks must stay unused on 3.13.
 *
 * Remove this file, its entry in setup.py and the loader in engine/rete.py when durable_rules
 * publishes a release built against PyObject_CallObject, or when verdict drops durable_rules.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX >= 0x030D0000
PyObject *PyEval_CallObject(PyObject *callable, PyObject *args) {
    return PyObject_CallObject(callable, args);
}
#endif

static struct PyModuleDef durable_compat = {
    PyModuleDef_HEAD_INIT, "_durable_compat",
    "PyEval_CallObject for durable_rules 2.0.28 on Python >= 3.13 (see engine/_durable_compat.c).",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__durable_compat(void) {
    return PyModule_Create(&durable_compat);
}
