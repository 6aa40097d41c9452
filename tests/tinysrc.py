"""Sources of tiny C and C++ extension sdists for the sdist lane's tests."""

C_SOURCE = r"""
#include <Python.h>
#include <stdlib.h>
static PyObject *parse(PyObject *self, PyObject *arg) {
    const char *s = PyUnicode_AsUTF8(arg);
    if (!s) return NULL;
    return PyLong_FromLong(strtol(s, NULL, 10));  /* GCC 16 binds this to __isoc23_strtol@GLIBC_2.38 */
}
static PyMethodDef methods[] = {{"parse", parse, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tinyc", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinyc(void) { return PyModule_Create(&module); }
"""

CPP_SOURCE = r"""
#include <Python.h>
#include <string>
#include <vector>
static PyObject *join(PyObject *self, PyObject *arg) {
    std::vector<std::string> parts;
    for (Py_ssize_t i = 0; i < PyList_Size(arg); i++) parts.push_back(PyUnicode_AsUTF8(PyList_GetItem(arg, i)));
    std::string out;
    for (const auto &p : parts) out += p;
    return PyUnicode_FromString(out.c_str());
}
static PyMethodDef methods[] = {{"join", join, METH_O, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tinycpp", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinycpp(void) { return PyModule_Create(&module); }
"""

# Needs a header no builder has: the readiness matrix must name it (failures.classify).
BROKEN_SOURCE = "#include <Python.h>\n#include <frobnicate/frob.h>\nthis is not C;\n"


def c_project(name: str, module: str, source: str, suffix: str = "c") -> dict[str, str]:
    """setup.py + package files of an sdist whose package ``name`` has one extension ``module``."""
    return {
        "setup.py": f"from setuptools import setup, Extension\nsetup(packages=['{name}'], ext_modules=[Extension('{name}.{module}', ['src/{module}.{suffix}'])])\n",
        f"{name}/__init__.py": f"from .{module} import *\n",
        f"src/{module}.{suffix}": source,
    }

# Links zlib and libffi, which no builder has: the sdist lane finds both headers in the
# source and builds them from the library recipes (resources/libraries) for each target.
LIBS_SOURCE = r"""
#include <Python.h>
#include <zlib.h>
#include <ffi.h>
static PyObject *crc(PyObject *self, PyObject *arg) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!s) return NULL;
    return PyLong_FromUnsignedLong(crc32(0L, (const Bytef *)s, (uInt)n));
}
static long add(long a, long b) { return a + b; }
static PyObject *ffi_add(PyObject *self, PyObject *args) {
    long a, b, result;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    ffi_cif cif;
    ffi_type *types[2] = {&ffi_type_slong, &ffi_type_slong};
    void *values[2] = {&a, &b};
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 2, &ffi_type_slong, types) != FFI_OK) return NULL;
    ffi_call(&cif, FFI_FN(add), &result, values);
    return PyLong_FromLong(result);
}
static PyMethodDef methods[] = {
    {"crc", crc, METH_O, NULL}, {"ffi_add", ffi_add, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tinylibs", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinylibs(void) { return PyModule_Create(&module); }
"""


def libs_project() -> dict[str, str]:
    """An sdist whose extension links zlib (``-lz``) and libffi (``-lffi``)."""
    return {
        "setup.py": (
            "from setuptools import setup, Extension\n"
            "setup(packages=['tinylibs'], ext_modules=[Extension('tinylibs._tinylibs', ['src/_tinylibs.c'], libraries=['z', 'ffi'])])\n"
        ),
        "tinylibs/__init__.py": "from ._tinylibs import *\n",
        "src/_tinylibs.c": LIBS_SOURCE,
    }
