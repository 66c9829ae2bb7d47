import Foundation
import ServiceKit
import XCTest

final class BLASRuntimeTests: XCTestCase {
    let zen5 = BLASRuntime.CPUFeatures(avx2: true, fma: true, avx512: true)
    let haswellOnly = BLASRuntime.CPUFeatures(avx2: true, fma: true, avx512: false)
    let oldCPU = BLASRuntime.CPUFeatures(avx2: false, fma: false, avx512: false)

    func testGenericCoreOnAVX512MachineReexecsWithSkylakeX() {
        XCTAssertEqual(BLASRuntime.decide(environment: [:], detectedCore: "Prescott", cpu: zen5),
                       .reexec(core: "SkylakeX", detected: "Prescott"))
    }

    func testGenericCoreOnAVX2MachineReexecsWithHaswell() {
        XCTAssertEqual(BLASRuntime.decide(environment: [:], detectedCore: "Nehalem", cpu: haswellOnly),
                       .reexec(core: "Haswell", detected: "Nehalem"))
    }

    func testUserSettingIsNeverOverridden() {
        XCTAssertEqual(BLASRuntime.decide(environment: ["OPENBLAS_CORETYPE": "Prescott"], detectedCore: "Prescott", cpu: zen5),
                       .respectUserSetting("Prescott"))
    }

    func testRecognisedCoreIsKept() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertEqual(BLASRuntime.decide(environment: [:], detectedCore: core, cpu: zen5), .keepLibraryChoice(core))
        }
    }

    func testNothingBetterOnOldCPU() {
        XCTAssertEqual(BLASRuntime.decide(environment: [:], detectedCore: "Prescott", cpu: oldCPU), .keepLibraryChoice("Prescott"))
    }

    func testReexecHappensOnlyOnce() {
        let env = ["OPENBLAS_CORETYPE": "SkylakeX", "SEGFLOW_BLAS_DETECTED_CORE": "Prescott"]
        XCTAssertEqual(BLASRuntime.decide(environment: env, detectedCore: "SkylakeX", cpu: zen5), .alreadySelected(detected: "Prescott"))
        // Even if the library somehow still reports a generic core, never loop.
        XCTAssertEqual(BLASRuntime.decide(environment: env, detectedCore: "Prescott", cpu: zen5), .alreadySelected(detected: "Prescott"))
    }

    func testCpuinfoFlagParsing() {
        let f = BLASRuntime.CPUFeatures(cpuinfoFlags: ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        XCTAssertEqual(f, zen5)
        let partial = BLASRuntime.CPUFeatures(cpuinfoFlags: ["avx2", "fma", "avx512f"])
        XCTAssertFalse(partial.avx512, "SkylakeX kernels need BW/DQ/VL/CD too")
    }
}

/// Runs the real `segflow doctor` binary as a child process with controlled environments:
/// the selection must happen before OpenBLAS loads, so only a fresh process can show it.
/// The doctor's SGEMM check (odd, tiny and blocked shapes, all transposes, against a
/// Double reference) then runs under the core the product selected.
final class DoctorProcessTests: XCTestCase {
    struct Report: Decodable {
        var blasCore: String
        var blasSelection: String
        var coreChoiceSource: String
        var detectedCoreBeforeSelection: String?
        var gemmChecksPassed: Bool
        var gemmChecks: [Check]
        struct Check: Decodable { var relativeError: Double }
    }

    static var segflowBinary: URL {
        if let explicit = ProcessInfo.processInfo.environment["SEGFLOW_BIN"] { return URL(fileURLWithPath: explicit) }
        // swift test runs <bin-path>/SegflowPackageTests.xctest; products sit beside it.
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        return runner.deletingLastPathComponent().appendingPathComponent("segflow")
    }

    /// Measuring 3–4 cores in 2 rounds takes a few seconds; far more means a hang.
    static let doctorBoundSeconds = 180.0

    final class ManagedAtomicFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }

    var cacheFile = FileManager.default.temporaryDirectory.appendingPathComponent("doctor-blas-\(UUID().uuidString).json")
    override func tearDown() { try? FileManager.default.removeItem(at: cacheFile) }

    func runDoctor(environment changes: [String: String?]) throws -> Report {
        let binary = Self.segflowBinary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("segflow binary not found at \(binary.path); build all products first (swift build -c release --build-tests)")
            throw CocoaError(.fileNoSuchFile)
        }
        var env = ProcessInfo.processInfo.environment
        env["SEGFLOW_BLAS_CACHE"] = cacheFile.path  // never the user's cache
        for (k, v) in changes { env[k] = v }
        let p = Process()
        p.executableURL = binary
        p.arguments = ["doctor", "--json", "--gemm-size", "256"]
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        // Bounded: a doctor that hangs (a probe child, the measuring lock) is killed and fails the test.
        let killed = ManagedAtomicFlag()
        let pid = p.processIdentifier
        let timer = DispatchWorkItem { killed.set(); kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.doctorBoundSeconds, execute: timer)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        if killed.isSet { XCTFail("segflow doctor did not finish within \(Self.doctorBoundSeconds) s; killed") }
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: data, as: UTF8.self))
        return try JSONDecoder().decode(Report.self, from: data)
    }

    func testGenericCoreIsAvoidedWhenUnset() throws {
        guard BLASRuntime.CPUFeatures.current().preferredCore != nil else {
            throw XCTSkip("CPU has neither AVX2 nor AVX-512: no better core exists")
        }
        // This machine's OpenBLAS may recognise the CPU; make it look generic to the
        // selector so the re-exec path itself is exercised end to end.
        // Measuring off: this is the generic-core rule on its own.
        let r = try runDoctor(environment: ["OPENBLAS_CORETYPE": nil,
                                            "SEGFLOW_BLAS_DETECTED_CORE": nil, "SEGFLOW_BLAS_MEASURE": "0",
                                            "SEGFLOW_BLAS_PRETEND_DETECTED_CORE": "Prescott"])
        XCTAssertEqual(r.blasCore, BLASRuntime.CPUFeatures.current().preferredCore)
        XCTAssertEqual(r.detectedCoreBeforeSelection, "Prescott")
        XCTAssertTrue(r.gemmChecksPassed, "SGEMM wrong under the selected core: \(r.gemmChecks.map(\.relativeError))")
    }

    func testUnsetWithoutPretendNeverEndsOnGenericCore() throws {
        guard BLASRuntime.CPUFeatures.current().preferredCore != nil else { throw XCTSkip("no AVX2 on this CPU") }
        let r = try runDoctor(environment: ["OPENBLAS_CORETYPE": nil, "SEGFLOW_BLAS_DETECTED_CORE": nil,
                                            "SEGFLOW_BLAS_PRETEND_DETECTED_CORE": nil, "SEGFLOW_BLAS_MEASURE": "0"])
        let avx2Class = ["haswell", "zen", "excavator", "skylakex", "cooperlake", "sapphirerapids"]
        XCTAssertTrue(avx2Class.contains(r.blasCore.lowercased()), "ended on generic core \(r.blasCore)")
        XCTAssertTrue(r.gemmChecksPassed)
    }

    func testUserValueIsRespected() throws {
        let r = try runDoctor(environment: ["OPENBLAS_CORETYPE": "Haswell", "SEGFLOW_BLAS_DETECTED_CORE": nil,
                                            "SEGFLOW_BLAS_PRETEND_DETECTED_CORE": "Prescott"])
        XCTAssertEqual(r.blasCore, "Haswell")
        XCTAssertNil(r.detectedCoreBeforeSelection)
        XCTAssertTrue(r.gemmChecksPassed)
        XCTAssertEqual(r.coreChoiceSource, "user")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cacheFile.path), "a user's core must not trigger measuring")
    }

    /// First start measures (children, bounded) and caches; the next start reads the cache;
    /// both end on the chosen core with the SGEMM check passing under it.
    func testFirstStartMeasuresThenUsesTheCache() throws {
        let flags = BLASRuntime.CPUFeatures.currentFlags()
        let library = BLASRuntime.loadedCoreName
        let candidates = BLASCoreChoice.candidates(flags: flags, libraryCore: library)
        guard !candidates.isEmpty else { throw XCTSkip("this CPU runs no OpenBLAS core beyond the generic one") }
        let unset: [String: String?] = ["OPENBLAS_CORETYPE": nil, "SEGFLOW_BLAS_DETECTED_CORE": nil,
                                        "SEGFLOW_BLAS_PRETEND_DETECTED_CORE": nil, "SEGFLOW_BLAS_MEASURE": nil]
        let first = try runDoctor(environment: unset)
        XCTAssertEqual(first.coreChoiceSource, "measured", first.blasSelection)
        guard case .hit(let file) = BLASCoreChoice.readCache(at: cacheFile, key: BLASCoreChoice.currentKey()) else {
            return XCTFail("no usable cache at \(cacheFile.path)")
        }
        XCTAssertEqual(Set(file.measurements.map(\.core)), Set(candidates))
        XCTAssertEqual(first.blasCore.lowercased(), file.chosenCore.lowercased())
        XCTAssertTrue(first.gemmChecksPassed, "SGEMM wrong under the chosen core \(first.blasCore)")
        let second = try runDoctor(environment: unset)
        XCTAssertEqual(second.coreChoiceSource, "cache", second.blasSelection)
        XCTAssertEqual(second.blasCore.lowercased(), file.chosenCore.lowercased())
        XCTAssertTrue(second.gemmChecksPassed)
    }
}
