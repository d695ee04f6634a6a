import Foundation

/// Builds real wheels (pip + setuptools in the test venv) and real machine code (gcc) for the
/// wheel tests, and derives broken and hostile wheels from them.
public enum WheelFixtures {
    /// A fixture failed to build; carries the tool's output.
    public struct BuildError: Error, CustomStringConvertible {
        public let step: String
        public let output: String
        public var description: String { "fixture step '\(step)' failed: \(output)" }
    }

    /// Runs a program and throws ``BuildError`` with its output when it fails.
    @discardableResult
    public static func check(_ step: String, _ executable: String, _ arguments: [String], in dir: URL? = nil) throws -> ProcessResult {
        let r = try TestProcess.run(executable, arguments, currentDirectory: dir)
        guard r.status == 0 else { throw BuildError(step: step, output: r.stdout + r.stderr) }
        return r
    }

    /// C sources with real intrinsics, one per instruction-set level; each exports functions
    /// named after mnemonics of *other* extensions, so a symbol-name match would misclassify.
    public static let isaSources: [String: (source: String, flags: [String])] = [
        "avx2": ("""
            #include <immintrin.h>
            __m256i add_avx2(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
            __m256 fma_avx2(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
            /* symbols that spell AVX-512/AMX mnemonics: must not count */
            int vpdpbusd(int x) { return x + 1; }
            int tdpbf16ps(int x) { return x * 3; }
            int vdpbf16ps_zmm0(int x) { return x - 2; }
            """, ["-mavx2", "-mfma"]),
        "avx512f": ("""
            #include <immintrin.h>
            __m512 add_avx512(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
            __m512i mul_avx512(__m512i a, __m512i b) { return _mm512_mullo_epi32(a, b); }
            __m256i add_avx2(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
            """, ["-mavx2", "-mavx512f"]),
        "avx512_vnni": ("""
            #include <immintrin.h>
            __m512i dot_vnni(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
            __m512 add_avx512(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
            """, ["-mavx512f", "-mavx512vnni"]),
        "avx512_bf16": ("""
            #include <immintrin.h>
            __m512 dot_bf16(__m512 acc, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(acc, a, b); }
            __m512i dot_vnni(__m512i acc, __m512i a, __m512i b) { return _mm512_dpbusd_epi32(acc, a, b); }
            """, ["-mavx512f", "-mavx512vnni", "-mavx512bf16"]),
        "amx_bf16": ("""
            #include <immintrin.h>
            void tile_bf16(const void *cfg, void *c, const void *a, const void *b) {
                _tile_loadconfig(cfg); _tile_loadd(1, a, 64); _tile_loadd(2, b, 64); _tile_zero(0);
                _tile_dpbf16ps(0, 1, 2); _tile_stored(0, c, 64); _tile_release();
            }
            __m512 dot_bf16(__m512 acc, __m512bh a, __m512bh b) { return _mm512_dpbf16_ps(acc, a, b); }
            """, ["-mavx512f", "-mavx512bf16", "-mamx-tile", "-mamx-bf16"]),
    ]

    /// Compiles C source into a shared object with gcc (never run: this machine may lack the ISA).
    public static func compileSharedObject(_ source: String, flags: [String], name: String, in dir: URL, compiler: String = "gcc") throws -> URL {
        let src = dir.appendingPathComponent("\(name).c")
        try source.write(to: src, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("\(name).so")
        try check("\(compiler) \(name)", compiler, ["-O2", "-shared", "-fPIC"] + flags + [src.path, "-o", out.path])
        return out
    }

    /// Generates a tiny setuptools project and builds its wheel with pip (no isolation, no deps),
    /// then retags it to `platformTag` (pip on Linux writes `linux_x86_64`, which PyPI refuses).
    ///
    /// - Parameters:
    ///   - distribution: the distribution name (`wfdemo-cpu`).
    ///   - module: the import package (`wfdemo`).
    ///   - extensionSource: C source of a `module._C` extension, or `nil` for a pure wheel.
    ///   - platformTag: the tag to retag to, or `nil` to keep pip's.
    public static func buildWheel(distribution: String, version: String, module: String, extensionSource: String? = nil,
                                  compileFlags: [String] = [], readme: String = "# Demo\n\nA test package.\n",
                                  platformTag: String? = "manylinux_2_28_x86_64", in dir: URL) throws -> URL {
        let project = dir.appendingPathComponent("src-\(distribution)-\(version)")
        let package = project.appendingPathComponent(module)
        try FileManager.default.createDirectory(at: package, withIntermediateDirectories: true)
        try "__version__ = \"\(version)\"\n".write(to: package.appendingPathComponent("__init__.py"), atomically: true, encoding: .utf8)
        try "__version__ = version = \"\(version)\"\n".write(to: package.appendingPathComponent("_version.py"), atomically: true, encoding: .utf8)
        try readme.write(to: project.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        var ext = ""
        if let extensionSource {
            let wrapped = "#include <Python.h>\n" + extensionSource + """

                static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", 0, -1, 0};
                PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&def); }
                """
            try wrapped.write(to: package.appendingPathComponent("_C.c"), atomically: true, encoding: .utf8)
            let flags = compileFlags.map { "'\($0)'" }.joined(separator: ", ")
            ext = ", ext_modules=[Extension('\(module)._C', ['\(module)/_C.c'], extra_compile_args=[\(flags)])]"
        }
        let setup = """
            from setuptools import setup, Extension
            setup(name='\(distribution)', version='\(version)', packages=['\(module)'],
                  description='wheelfarm test fixture', long_description=open('README.md').read(),
                  long_description_content_type='text/markdown'\(ext))
            """
        try setup.write(to: project.appendingPathComponent("setup.py"), atomically: true, encoding: .utf8)
        let dist = dir.appendingPathComponent("dist-\(distribution)-\(version)")
        try check("pip wheel", TestEnvironment.python, ["-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                                                         "--disable-pip-version-check", "-w", dist.path, project.path])
        guard var wheel = try FileManager.default.contentsOfDirectory(at: dist, includingPropertiesForKeys: nil)
            .first(where: { $0.pathExtension == "whl" }) else {
            throw BuildError(step: "pip wheel", output: "no wheel in \(dist.path)")
        }
        if let platformTag, extensionSource != nil {
            try check("wheel tags", TestEnvironment.python, ["-m", "wheel", "tags", "--remove", "--platform-tag", platformTag, wheel.path])
            wheel = try FileManager.default.contentsOfDirectory(at: dist, includingPropertiesForKeys: nil)
                .first(where: { $0.pathExtension == "whl" })!
        }
        return wheel
    }

    /// The script that derives broken and hostile wheels from a good one (Python's zipfile,
    /// plus byte patches for what zipfile will not write). One directory per check id, holding
    /// one wheel that should fail that check and no other.
    public static let corpusScript = #"""
import base64, hashlib, os, shutil, struct, sys, zipfile

base, out, avx512_so, arm_so = sys.argv[1:5]
name = os.path.basename(base)
dist, ver = name.split("-")[0], name.split("-")[1]
di = f"{dist}-{ver}.dist-info"

def h(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def members():
    with zipfile.ZipFile(base) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]

def write(case, items, filename=name, record="auto", stored=(), extra_info=None):
    d = os.path.join(out, case)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, filename)
    items = [(n, b) for n, b in items if n != f"{di}/RECORD"]
    if record == "auto":
        unique = dict((n, b) for n, b in items if not n.endswith("/"))  # duplicates listed once
        rows = "".join(f"{n},{h(b)},{len(b)}\n" for n, b in unique.items()) + f"{di}/RECORD,,\n"
        record = rows.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in items:
            info = zipfile.ZipInfo(n, (2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if n in stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            if extra_info and n in extra_info: extra_info[n](info)
            z.writestr(info, b)
        info = zipfile.ZipInfo(f"{di}/RECORD", (2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, record)
    return path

def replace(items, target, data):
    return [(n, data if n == target else b) for n, b in items]

def edit(items, target, fn):
    return [(n, fn(b) if n == target else b) for n, b in items]

def patch(path, old, new, which=0):
    data = bytearray(open(path, "rb").read())
    at = -1
    for _ in range(which + 1):
        at = data.index(old, at + 1)
    data[at:at + len(old)] = new
    open(path, "wb").write(bytes(data))

m = members()
so = next(n for n, _ in m if n.endswith(".so"))
init = next(n for n, _ in m if n.endswith("/__init__.py"))
pkg = init.split("/")[0]
meta, wheel = f"{di}/METADATA", f"{di}/WHEEL"

write("valid", m)
# zip.archive: truncated transfer
p = write("zip.archive", m); data = open(p, "rb").read(); open(p, "wb").write(data[:-200])
# zip.limits: a member of zeros far above the test's ratio limit
write("zip.limits", m + [(f"{pkg}/zeros.bin", bytes(4 << 20))])
# zip.paths: path traversal
write("zip.paths", m + [("../escape.py", b"print('owned')\n")])
# zip.duplicates: the same name twice
write("zip.duplicates", m + [(init, dict(m)[init])])
# zip.file-types: a symlink member
def symlink(info): info.external_attr = 0o120777 << 16
write("zip.file-types", m + [(f"{pkg}/link", b"/etc/passwd")], extra_info={f"{pkg}/link": symlink})
# zip.encryption: encryption flag set in the central directory
p = write("zip.encryption", m)
data = bytearray(open(p, "rb").read())
at = data.index(init.encode(), data.index(b"PK\x01\x02")) - 46  # init's central entry; flags at +8
data[at + 8] |= 1; open(p, "wb").write(bytes(data))
# zip.local-headers: local header names another member
p = write("zip.local-headers", m)
raw = bytearray(open(p, "rb").read())
first_local = raw.index(init.encode())  # first occurrence: the local header
raw[first_local + len(init) - 4] ^= 0x01  # '_init__.py' -> change one letter
open(p, "wb").write(bytes(raw))
# zip.crc: a stored member's byte flipped
stored_name = f"{pkg}/data.txt"
p = write("zip.crc", m + [(stored_name, b"payload " * 64)], stored=(stored_name,))
patch(p, b"payload payload", b"paylOad payload")
# filename.format: build tag that does not start with a digit (WHEEL agrees)
parts = name[:-4].split("-")
bad = "-".join(parts[:2] + ["x1"] + parts[2:]) + ".whl"
write("filename.format", edit(m, wheel, lambda b: b"Build: x1\n" + b), filename=bad)
# filename.platform: pip's linux tag (WHEEL agrees)
tag = parts[-1]
write("filename.platform", edit(m, wheel, lambda b: b.replace(tag.encode(), b"linux_x86_64")), filename=name.replace(tag, "linux_x86_64"))
# filename.arch / filename.expectation / isa.expected: the valid wheel with another expectation
write("filename.arch", m); write("filename.expectation", m); write("isa.expected", m)
# dist-info.layout: a second .dist-info
write("dist-info.layout", m + [("other-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")])
# metadata.*
write("metadata.parse", edit(m, meta, lambda b: b.replace(b"\nName:", b"\nthis line is not a header\nName:", 1)))
write("metadata.metadata-version", edit(m, meta, lambda b: b.replace(b"Metadata-Version: 2.1", b"Metadata-Version: 9.9")))
def drop_version(b):
    return b"\n".join(l for l in b.split(b"\n") if not l.startswith(b"Version:"))
write("metadata.required-fields", edit(m, meta, drop_version))
write("metadata.name-version", edit(m, meta, lambda b: b.replace(f"Version: {ver}".encode(), b"Version: 9.9.9", 1)))
write("metadata.description", edit(m, meta, lambda b: b.split(b"\n\n", 1)[0] + b"\n"))
# wheel.*
write("wheel.parse", edit(m, wheel, lambda b: b"garbage without colon\n" + b))
write("wheel.version", edit(m, wheel, lambda b: b.replace(b"Wheel-Version: 1.0", b"Wheel-Version: 2.0")))
write("wheel.root-is-purelib", edit(m, wheel, lambda b: b.replace(b"Root-Is-Purelib: false", b"Root-Is-Purelib: true")))
write("wheel.tags", edit(m, wheel, lambda b: b.replace(b"Tag: cp", b"Tag: cp27-cp27mu-manylinux1_x86_64\nTag: cp", 1)))
# record.*
good_rows = "".join(f"{n},{h(b)},{len(b)}\n" for n, b in m if n != f"{di}/RECORD")
write("record.parse", m, record=(good_rows + "only,two\n" + f"{di}/RECORD,,\n").encode())
write("record.coverage", m, record=("".join(f"{n},{h(b)},{len(b)}\n" for n, b in m if n not in (f"{di}/RECORD", init)) + f"{di}/RECORD,,\n").encode())
write("record.hashes", replace(m, init, b"# tampered after the build\n"), record=(good_rows + f"{di}/RECORD,,\n").encode())
write("record.self", m, record=(good_rows + f"{di}/RECORD,sha256=AAAA,12\n").encode())
# content.required-files: the compiled extension renamed
write("content.required-files", [(n.replace("/_C.", "/_D.") if n == so else n, b) for n, b in m])
# elf.machine: an aarch64 object in an x86-64 wheel
write("elf.machine", m + [(f"{pkg}/_arm.so", open(arm_so, "rb").read())])
# isa.excluded: the extension swapped for AVX-512 code
write("isa.excluded", replace(m, so, open(avx512_so, "rb").read()))
"""#

    /// Writes the corpus for `base` (a valid wheel with a `_C*.so` built for AVX2) into `dir`;
    /// returns check id → wheel path. Needs an AVX-512F object and an aarch64 object.
    public static func makeCorpus(base: URL, avx512Object: URL, arm64Object: URL, in dir: URL) throws -> [String: URL] {
        let script = dir.appendingPathComponent("make_corpus.py")
        try corpusScript.write(to: script, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("corpus")
        try check("corpus", TestEnvironment.python, [script.path, base.path, out.path, avx512Object.path, arm64Object.path])
        var result: [String: URL] = [:]
        for case_ in try FileManager.default.contentsOfDirectory(atPath: out.path) {
            let caseDir = out.appendingPathComponent(case_)
            if let wheel = try FileManager.default.contentsOfDirectory(at: caseDir, includingPropertiesForKeys: nil).first {
                result[case_] = wheel
            }
        }
        return result
    }
}

extension WheelFixtures {
    /// Flips one byte inside the first member's stored data, as a truncated or tampered transfer
    /// would: the archive still opens, but that member's CRC (and RECORD hash) no longer match.
    public static func corruptFirstMember(_ wheel: URL) throws {
        var bytes = try Data(contentsOf: wheel)
        guard bytes.count > 64, bytes[0] == 0x50, bytes[1] == 0x4B else { throw BuildError(step: "corrupt", output: "not a zip") }
        let nameLength = Int(bytes[26]) | Int(bytes[27]) << 8
        let extraLength = Int(bytes[28]) | Int(bytes[29]) << 8
        let dataStart = 30 + nameLength + extraLength
        bytes[dataStart + 1] ^= 0xFF
        try bytes.write(to: wheel)
    }
}
