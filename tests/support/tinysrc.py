"""Sources of tiny C, C++ and Rust extension sdists for the sdist lane's tests."""


from paths import FIXTURES

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


_RUST_FIXTURES = FIXTURES / "rust"
_PYO3_LIB = """use pyo3::prelude::*;

#[pyfunction]
fn triple(x: i64) -> i64 {
    x * 3
}

#[pymodule]
fn MODULE(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(triple, m)?)
}
"""
_CARGO_TOML = """[package]
name = "{package}"
version = "1.0.0"
edition = "2021"

[lib]
name = "{lib}"
crate-type = ["cdylib"]

[dependencies]
pyo3 = {{ version = "0.30", features = ["extension-module"] }}
"""


def maturin_project() -> dict[str, str]:
    """A PyO3 extension built by maturin (module ``tinyrust``, ``triple(x)``), with the
    Cargo.lock that pins its crates (tests/fixtures/rust, made with `cargo generate-lockfile`)."""
    return {
        "pyproject.toml": (
            '[build-system]\nrequires = ["maturin>=1.5,<2"]\nbuild-backend = "maturin"\n'
            '[project]\nname = "tinyrust"\nversion = "1.0.0"\n'
        ),
        "Cargo.toml": _CARGO_TOML.format(package="tinyrust", lib="tinyrust"),
        "Cargo.lock": (_RUST_FIXTURES / "tinyrust.Cargo.lock").read_text(),
        "src/lib.rs": _PYO3_LIB.replace("MODULE", "tinyrust"),
    }


def setuptools_rust_project(with_lock: bool = True) -> dict[str, str]:
    """A PyO3 extension ``tinyrs._tinyrs`` built by setuptools-rust (``tinyrs.triple(x)``)."""
    files = {
        "setup.py": (
            "from setuptools import setup\nfrom setuptools_rust import Binding, RustExtension\n"
            "setup(packages=['tinyrs'], rust_extensions=[RustExtension('tinyrs._tinyrs', binding=Binding.PyO3)])\n"
        ),
        "tinyrs/__init__.py": "from ._tinyrs import *\n",
        "Cargo.toml": _CARGO_TOML.format(package="tinyrs", lib="_tinyrs"),
        "src/lib.rs": _PYO3_LIB.replace("MODULE", "_tinyrs"),
    }
    if with_lock:
        files["Cargo.lock"] = (_RUST_FIXTURES / "tinyrs.Cargo.lock").read_text()
    return files


# Links libpq, found the way psycopg2 finds it: by running pg_config (the libpq recipe's script,
# first on the cell's PATH) for the include and library directories.
PQ_SOURCE = r"""
#include <Python.h>
#include <libpq-fe.h>
static PyObject *version(PyObject *self, PyObject *noargs) { return PyLong_FromLong(PQlibVersion()); }
/* "OpenSSL" when libpq was built with TLS (PQsslAttribute with no connection) */
static PyObject *ssl_library(PyObject *self, PyObject *noargs) {
    const char *name = PQsslAttribute(NULL, "library");
    return PyUnicode_FromString(name ? name : "none");
}
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, NULL}, {"ssl_library", ssl_library, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_tinypq", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinypq(void) { return PyModule_Create(&mod); }
"""


def pq_project() -> dict[str, str]:
    """setup.py + package files of ``tinypq``: ``tinypq.version()`` is libpq's PQlibVersion(),
    ``tinypq.ssl_library()`` the TLS library libpq was built with."""
    setup = (
        "import subprocess\n"
        "from setuptools import setup, Extension\n"
        "def pg(flag):\n"
        "    return subprocess.run(['pg_config', flag], check=True, capture_output=True, text=True).stdout.strip()\n"
        "setup(packages=['tinypq'], ext_modules=[Extension('tinypq._tinypq', ['src/_tinypq.c'],\n"
        "      include_dirs=[pg('--includedir')], library_dirs=[pg('--libdir')], libraries=['pq'])])\n"
    )
    return {"setup.py": setup, "tinypq/__init__.py": "from ._tinypq import *\n", "src/_tinypq.c": PQ_SOURCE}


GIT_SOURCE = r"""
#include <Python.h>
#include <git2.h>
static PyObject *version(PyObject *self, PyObject *noargs) {
    int major, minor, rev;
    git_libgit2_version(&major, &minor, &rev);
    return PyUnicode_FromFormat("%d.%d.%d", major, minor, rev);
}
/* True when libgit2 was built with HTTPS (the openssl recipe) */
static PyObject *https(PyObject *self, PyObject *noargs) { return PyBool_FromLong(git_libgit2_features() & GIT_FEATURE_HTTPS); }
/* hash a blob in memory: zlib-free, but exercises the SHA-1 code and the library's init */
static PyObject *blob_id(PyObject *self, PyObject *arg) {
    Py_ssize_t n; const char *data = PyUnicode_AsUTF8AndSize(arg, &n);
    git_oid oid; char hex[GIT_OID_SHA1_HEXSIZE + 1];
    if (data == NULL) return NULL;
    git_libgit2_init();
    if (git_odb_hash(&oid, data, (size_t)n, GIT_OBJECT_BLOB) != 0) { PyErr_SetString(PyExc_RuntimeError, "git_odb_hash failed"); return NULL; }
    git_oid_tostr(hex, sizeof hex, &oid);
    return PyUnicode_FromString(hex);
}
static PyMethodDef methods[] = {
    {"version", version, METH_NOARGS, NULL}, {"https", https, METH_NOARGS, NULL}, {"blob_id", blob_id, METH_O, NULL}, {NULL, NULL, 0, NULL}
};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_tinygit", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinygit(void) { return PyModule_Create(&mod); }
"""


def git_project() -> dict[str, str]:
    """setup.py + package files of ``tinygit``, linking libgit2 by a plain ``-lgit2`` as
    pygit2 does: ``version()``, ``https()`` (built with TLS) and ``blob_id(text)`` (git's
    object id of a blob)."""
    setup = (
        "from setuptools import setup, Extension\n"
        "setup(packages=['tinygit'], ext_modules=[Extension('tinygit._tinygit', ['src/_tinygit.c'], libraries=['git2'])])\n"
    )
    return {"setup.py": setup, "tinygit/__init__.py": "from ._tinygit import *\n", "src/_tinygit.c": GIT_SOURCE}


MYSQL_SOURCE = r"""
#include <Python.h>
#include <mysql.h>
static PyObject *client_info(PyObject *self, PyObject *noargs) { return PyUnicode_FromString(mysql_get_client_info()); }
/* the TLS library the client was built with (the openssl recipe), None without TLS */
static PyObject *tls_library(PyObject *self, PyObject *noargs) {
    const char *lib = NULL;
    if (mysql_library_init(0, NULL, NULL)) Py_RETURN_NONE;  /* starts TLS, which names its library */
    if (mariadb_get_infov(NULL, MARIADB_TLS_LIBRARY, &lib) || lib == NULL) Py_RETURN_NONE;
    return PyUnicode_FromString(lib);
}
/* mysql_errno of a connection to 127.0.0.1:port: exercises init, the plugins and sockets */
static PyObject *connect_errno(PyObject *self, PyObject *arg) {
    long port = PyLong_AsLong(arg); unsigned int timeout = 2; unsigned int err;
    MYSQL *m = mysql_init(NULL);
    if (m == NULL) return PyErr_NoMemory();
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    err = mysql_real_connect(m, "127.0.0.1", "nobody", "", NULL, (unsigned int)port, NULL, 0) ? 0 : mysql_errno(m);
    mysql_close(m);
    return PyLong_FromUnsignedLong(err);
}
static PyMethodDef methods[] = {
    {"client_info", client_info, METH_NOARGS, NULL}, {"tls_library", tls_library, METH_NOARGS, NULL},
    {"connect_errno", connect_errno, METH_O, NULL}, {NULL, NULL, 0, NULL}
};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_tinymysql", NULL, -1, methods};
PyMODINIT_FUNC PyInit__tinymysql(void) { return PyModule_Create(&mod); }
"""


def mysql_project() -> dict[str, str]:
    """setup.py + package files of ``tinymysql``, finding the client library as mysqlclient
    2.2 does (``pkg-config --cflags --libs mysqlclient``): ``client_info()``,
    ``tls_library()`` and ``connect_errno(port)``."""
    setup = (
        "import shlex, subprocess\n"
        "from setuptools import setup, Extension\n"
        "def pc(flag):\n"
        "    return shlex.split(subprocess.run(['pkg-config', flag, 'mysqlclient'], check=True, capture_output=True, text=True).stdout)\n"
        "setup(packages=['tinymysql'], ext_modules=[Extension('tinymysql._tinymysql', ['src/_tinymysql.c'],\n"
        "      extra_compile_args=pc('--cflags'), extra_link_args=pc('--libs'))])\n"
    )
    return {"setup.py": setup, "tinymysql/__init__.py": "from ._tinymysql import *\n", "src/_tinymysql.c": MYSQL_SOURCE}
