import Foundation
import ServiceKit
import XCTest

/// The per-machine core choice: cache file, key, fall-backs, the choice rule, and the
/// bounded probe children.
final class BLASCoreChoiceTests: XCTestCase {
    let key = BLASCoreChoice.Key(cpuModel: "Test CPU", cpuFlags: "0123456789abcdef", openBLASVersion: "0.3.21")
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("blas-core-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func m(_ core: String, _ gflops: Double?, check: Bool = true, loaded: String? = nil, error: String? = nil) -> BLASCoreChoice.Measurement {
        BLASCoreChoice.Measurement(core: core, loadedCore: loaded ?? core, gflops: gflops, checkPassed: check,
                                   worstRelativeError: check ? 1e-7 : 0.5, error: error)
    }

    /// A measurement double that records what it was asked for (the real one starts children).
    final class Recorder: @unchecked Sendable {
        var calls: [[String]] = []
        let result: [BLASCoreChoice.Measurement]
        init(_ result: [BLASCoreChoice.Measurement]) { self.result = result }
        func measure(_ cores: [String]) -> [BLASCoreChoice.Measurement] { calls.append(cores); return result }
    }

    func testCacheRoundTrip() throws {
        let url = dir.appendingPathComponent("blas-core.json")
        let file = BLASCoreChoice.cacheFile(key: key, chosenCore: "SkylakeX", libraryCore: "Cooperlake",
                                            measurements: [m("SkylakeX", 184), m("Cooperlake", 159)])
        try BLASCoreChoice.writeCache(file, to: url)
        XCTAssertEqual(BLASCoreChoice.readCache(at: url, key: key), .hit(file))
        // And a start uses it without measuring.
        let rec = Recorder([])
        XCTAssertEqual(BLASCoreChoice.resolve(environment: [:], key: key, libraryCore: "Cooperlake", candidates: ["SkylakeX", "Cooperlake"],
                                              cacheURL: url, measure: rec.measure),
                       .use(core: "SkylakeX", source: "cache", warnings: []))
        XCTAssertTrue(rec.calls.isEmpty)
    }

    func testMissingCacheMeasuresAndWrites() throws {
        let url = dir.appendingPathComponent("sub/blas-core.json")
        let rec = Recorder([m("Haswell", 120), m("SkylakeX", 184), m("Cooperlake", 159)])
        let r = BLASCoreChoice.resolve(environment: [:], key: key, libraryCore: "Cooperlake", candidates: ["Haswell", "SkylakeX", "Cooperlake"],
                                       cacheURL: url, measure: rec.measure)
        XCTAssertEqual(r, .use(core: "SkylakeX", source: "measured", warnings: []))
        XCTAssertEqual(rec.calls, [["Haswell", "SkylakeX", "Cooperlake"]])
        guard case .hit(let f) = BLASCoreChoice.readCache(at: url, key: key) else { return XCTFail("no cache written") }
        XCTAssertEqual(f.chosenCore, "SkylakeX")
        XCTAssertEqual(f.libraryCore, "Cooperlake")
    }

    func testCorruptCacheIsMeasuredAgainWithAWarning() throws {
        let url = dir.appendingPathComponent("blas-core.json")
        for garbage in ["{not json", "", "{\"formatVersion\": 1}", "[1,2,3]"] {
            try Data(garbage.utf8).write(to: url)
            let rec = Recorder([m("SkylakeX", 184), m("Cooperlake", 159)])
            let r = BLASCoreChoice.resolve(environment: [:], key: key, libraryCore: "Cooperlake", candidates: ["SkylakeX", "Cooperlake"],
                                           cacheURL: url, measure: rec.measure)
            guard case let .use(core, source, warnings) = r else { return XCTFail("\(garbage): \(r)") }
            XCTAssertEqual(core, "SkylakeX"); XCTAssertEqual(source, "measured")
            XCTAssertEqual(rec.calls.count, 1, "a corrupt cache must be measured again: \(garbage)")
            XCTAssertTrue(warnings.contains { $0.contains("not a core-choice file") }, "\(garbage): \(warnings)")
            guard case .hit = BLASCoreChoice.readCache(at: url, key: key) else { return XCTFail("corrupt file not replaced") }
        }
    }

    func testKeyMismatchIsMeasuredAgain() throws {
        let url = dir.appendingPathComponent("blas-core.json")
        var other = key
        other.openBLASVersion = "0.3.26"
        try BLASCoreChoice.writeCache(BLASCoreChoice.cacheFile(key: other, chosenCore: "Haswell", libraryCore: "Haswell",
                                                               measurements: [m("Haswell", 100)]), to: url)
        var cpu = key
        cpu.cpuModel = "Another CPU"
        for k in [key, cpu] {
            let rec = Recorder([m("SkylakeX", 184), m("Cooperlake", 100)])
            let r = BLASCoreChoice.resolve(environment: [:], key: k, libraryCore: "Cooperlake", candidates: ["SkylakeX", "Cooperlake"],
                                           cacheURL: url, measure: rec.measure)
            guard case let .use(core, source, warnings) = r else { return XCTFail("\(r)") }
            XCTAssertEqual(core, "SkylakeX"); XCTAssertEqual(source, "measured")
            XCTAssertEqual(rec.calls.count, 1)
            XCTAssertTrue(warnings.contains { $0.contains("another machine or OpenBLAS") }, "\(warnings)")
            // Put the other machine's file back for the next key.
            try BLASCoreChoice.writeCache(BLASCoreChoice.cacheFile(key: other, chosenCore: "Haswell", libraryCore: "Haswell",
                                                                   measurements: [m("Haswell", 100)]), to: url)
        }
    }

    func testDisabledNeverMeasuresNorReads() {
        let rec = Recorder([m("SkylakeX", 184)])
        let r = BLASCoreChoice.resolve(environment: ["SEGFLOW_BLAS_MEASURE": "0"], key: key, libraryCore: "Cooperlake",
                                       candidates: ["SkylakeX"], cacheURL: dir.appendingPathComponent("x.json"), measure: rec.measure)
        XCTAssertEqual(r, .fallBack(warnings: []))
        XCTAssertTrue(rec.calls.isEmpty)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.json").path))
    }

    func testNothingUsableFallsBackWithWarnings() {
        let rec = Recorder([m("SkylakeX", nil, error: "probe for SkylakeX did not finish within 30 seconds; killed"),
                            m("Cooperlake", 200, check: false)])
        let r = BLASCoreChoice.resolve(environment: [:], key: key, libraryCore: "Cooperlake", candidates: ["SkylakeX", "Cooperlake"],
                                       cacheURL: dir.appendingPathComponent("c.json"), measure: rec.measure)
        guard case .fallBack(let warnings) = r else { return XCTFail("\(r)") }
        XCTAssertTrue(warnings.contains { $0.contains("killed") })
        XCTAssertTrue(warnings.contains { $0.contains("SGEMM check failed") })
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("c.json").path), "nothing usable must not be cached")
    }

    func testChoiceRule() {
        // The library's own pick stays unless another is minimumGain faster.
        let within = 159 * (1 + BLASCoreChoice.minimumGain) * 0.999
        XCTAssertEqual(BLASCoreChoice.choose([m("SkylakeX", within), m("Cooperlake", 159)], libraryCore: "Cooperlake"), "Cooperlake")
        XCTAssertEqual(BLASCoreChoice.choose([m("SkylakeX", 184), m("Cooperlake", 159)], libraryCore: "Cooperlake"), "SkylakeX")
        // A wrong result, a core the library silently replaced, or a failed child never wins.
        XCTAssertEqual(BLASCoreChoice.choose([m("SkylakeX", 500, check: false), m("Cooperlake", 159)], libraryCore: "Cooperlake"), "Cooperlake")
        XCTAssertEqual(BLASCoreChoice.choose([m("SapphireRapids", 500, loaded: "Prescott"), m("Haswell", 100)], libraryCore: "Prescott"), "Haswell")
        XCTAssertNil(BLASCoreChoice.choose([m("SkylakeX", nil, error: "x")], libraryCore: "Cooperlake"))
    }

    func testCandidatesFollowTheFlags() {
        let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        XCTAssertEqual(BLASCoreChoice.candidates(flags: avx512.union(["avx512_bf16"]), libraryCore: "Cooperlake"), ["Haswell", "SkylakeX", "Cooperlake"])
        XCTAssertEqual(BLASCoreChoice.candidates(flags: avx512, libraryCore: "Prescott"), ["Haswell", "SkylakeX"])
        XCTAssertEqual(BLASCoreChoice.candidates(flags: ["avx2", "fma"], libraryCore: "Zen"), ["Haswell", "Zen"])
        XCTAssertEqual(BLASCoreChoice.candidates(flags: ["sse3"], libraryCore: "Prescott"), [])
    }

    func testUserSettingIsNeverMeasured() {
        // The decision that precedes any measuring (selectCoreOrReexec measures only for
        // keepLibraryChoice / reexec).
        let cpu = BLASRuntime.CPUFeatures(avx2: true, fma: true, avx512: true)
        XCTAssertEqual(BLASRuntime.decide(environment: ["OPENBLAS_CORETYPE": "Haswell"], detectedCore: "Cooperlake", cpu: cpu),
                       .respectUserSetting("Haswell"))
    }

    /// A probe child that hangs is killed at its bound and its core is dropped.
    func testHangingProbeIsKilledAtItsBound() throws {
        let script = dir.appendingPathComponent("hang.sh")
        try Data("#!/bin/sh\nexec sleep 600\n".utf8).write(to: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let bound: Duration = .seconds(1)
        let t0 = ContinuousClock.now
        let r = BLASCoreChoice.measure(cores: ["Haswell"], executable: script.path, bound: bound)
        let took = ContinuousClock.now - t0
        XCTAssertLessThan(took, .seconds(10), "the bound (\(bound)) was not enforced: took \(took)")
        XCTAssertEqual(r.count, 1)
        XCTAssertFalse(r[0].usable)
        XCTAssertTrue(r[0].error?.contains("killed") == true, "\(r)")
    }

    /// The real probe: a child of the segflow binary with OPENBLAS_CORETYPE set runs that
    /// core, passes the SGEMM check and reports a throughput.
    func testRealProbeMeasuresTheRequestedCore() throws {
        let flags = BLASRuntime.CPUFeatures.currentFlags()
        guard let core = BLASCoreChoice.candidates(flags: flags, libraryCore: "Prescott").first else {
            throw XCTSkip("this CPU runs no OpenBLAS core beyond the generic one")
        }
        let binary = DoctorProcessTests.segflowBinary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else { return XCTFail("no segflow binary at \(binary.path)") }
        let r = BLASCoreChoice.measure(cores: [core], executable: binary.path)
        XCTAssertEqual(r.count, 1)
        XCTAssertNil(r[0].error)
        XCTAssertEqual(r[0].loadedCore, core)
        XCTAssertTrue(r[0].checkPassed, "SGEMM check failed under \(core): \(r[0].worstRelativeError ?? -1)")
        XCTAssertLessThanOrEqual(r[0].worstRelativeError ?? 1, BLASDiagnostics.gemmRelativeTolerance)
        XCTAssertGreaterThan(r[0].gflops ?? 0, 0)
        XCTAssertTrue(r[0].usable)
    }
}
