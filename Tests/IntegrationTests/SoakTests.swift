import Foundation
import Messaging
import XCTest

/// A bounded soak (opt-in: SEGFLOW_SOAK_SECONDS=600): mixed SAM images and prompts, CLIPSeg
/// text prompts and video frames through the service processes, with a random decoder
/// killed (-9) and restarted every minute. Zero lost, duplicates identical; prints each
/// service's RSS curve and idle CPU. Run:
///   SEGFLOW_SOAK_SECONDS=600 [SEGFLOW_SOAK_INTERVAL_S=5] [SEGFLOW_SOAK_RESTART_S=60] swift test -c release --skip-build --disable-swift-testing --filter SoakTests
final class SoakTests: XCTestCase {
    static func rssMiB(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return -1 }
        return kb / 1024
    }

    /// utime + stime in clock ticks.
    static func cpuTicks(_ pid: pid_t) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let tail = stat.split(separator: ")").last else { return 0 }
        let f = tail.split(separator: " ")
        return (Int(f[11]) ?? 0) + (Int(f[12]) ?? 0)
    }

    static let decoderCacheMiB = 64
    static let framesEveryRounds = 4
    /// RSS may grow this much (MiB) from the middle third of a never-restarted service's
    /// samples (the first third is warm-up) to the last third: allocator noise, the CLIPSeg and SAM models' scratch
    /// buffers at their largest inputs; a leak of one image per round (~1 MiB) over 600 s
    /// is 120 MiB, well past it.
    static let flatRSSSlackMiB = 64

    func testSoak() async throws {
        guard let seconds = ProcessInfo.processInfo.environment["SEGFLOW_SOAK_SECONDS"].flatMap(Int.init), seconds > 0 else {
            throw XCTSkip("opt-in: set SEGFLOW_SOAK_SECONDS (e.g. 600)")
        }
        // Seconds between rounds (3 images, 5 requests each): keep the load within what the
        // machine encodes, or prompts outwait their embeddings (EMBEDDING_NOT_FOUND).
        let interval = ProcessInfo.processInfo.environment["SEGFLOW_SOAK_INTERVAL_S"].flatMap(Int.init) ?? 5
        // Seconds between decoder kills (SEGFLOW_SOAK_RESTART_S; 0: never — then the
        // decoders' RSS must be flat after warm-up too).
        let restartEvery = ProcessInfo.processInfo.environment["SEGFLOW_SOAK_RESTART_S"].flatMap(Int.init) ?? 60
        try Fixtures.requireCheckpoint()
        let cluster = try await TestCluster(partitions: 8)
        defer { cluster.stop() }
        let ckpt = cluster.logDir.appendingPathComponent("clipseg-tiny.safetensors")
        try TextPromptIntegrationTests.makeCheckpoint(at: ckpt)
        let both = ["--model", "litemedsam", "--clipseg-checkpoint", ckpt.path, "--clipseg-config", "tiny-test"]
        // A 64 MiB embedding cache fills within the first minutes, so the decoders' RSS
        // curves show the plateau the cache bound promises (the default 256 MiB does not
        // fill between two kills).
        let decoder = both + ["--cache-mb", "\(Self.decoderCacheMiB)"]
        try cluster.start("segflow-image-encoder", name: "encoder", extra: both)
        try cluster.start("segflow-prompt-decoder", name: "decoder-1", extra: decoder)
        try cluster.start("segflow-prompt-decoder", name: "decoder-2", extra: decoder)
        try cluster.start("segflow-text-encoder", name: "text", extra: ["--model", "clipseg", "--checkpoint", ckpt.path, "--clipseg-config", "tiny-test"])
        let sam = try Fixtures.png("chelsea_crop"), photo = try Fixtures.png("coffee")
        var wanted = Set<String>()
        var rss: [String: [Int]] = [:]
        let start = ContinuousClock.now
        var round = 0, lastRestart = start, lastSample = start - .seconds(10)
        while ContinuousClock.now - start < .seconds(seconds) {
            round += 1
            var records: [ProducerRecord] = []
            let id = "soak-\(round)"
            records.append(record(SegflowTopics.images, key: id, ImageRequest(requestID: "\(id)-img", imageID: id, image: .png(round % 2 == 0 ? sam : photo)).encode(), requestID: "\(id)-img"))
            for j in 0..<3 {
                let rid = "\(id)-p\(j)"
                records.append(record(SegflowTopics.prompts, key: id, PromptRequest(requestID: rid, imageID: id, points: [.init(x: Float(20 + 25 * j), y: 40, label: 1)]).encode(), requestID: rid))
                wanted.insert(rid)
            }
            let cid = "soak-clip-\(round)"
            records.append(record(SegflowTopics.images, key: cid, ImageRequest(requestID: "\(cid)-img", imageID: cid, image: .png(sam), model: "clipseg").encode(), requestID: "\(cid)-img"))
            var text = PromptRequest(requestID: "\(cid)-t", imageID: cid)
            text.text = round % 2 == 0 ? "a cat" : "a cup"
            records.append(record(SegflowTopics.text, key: cid, text.encode(), requestID: "\(cid)-t"))
            wanted.insert("\(cid)-t")
            // The stream's frames all land on one partition (key "cam"), and librdkafka's
            // mock broker keeps only ~5 MiB (two or three f16 embeddings) per partition: a
            // frame every round would delete any other image of that partition within ~10 s,
            // less than a decoder kill and restart takes (~15 s), and its prompts would then
            // be answered EMBEDDING_NOT_FOUND — a limit of the mock, not of Kafka's retention.
            // A frame every 4th round keeps every embedding there for 40 s or more.
            if round % Self.framesEveryRounds == 0 {
                let fid = "cam-frame-\(round)"
                records.append(record(SegflowTopics.images, key: "cam", ImageRequest(requestID: "\(fid)-img", imageID: fid, image: .png(sam),
                                                                                 frame: VideoFrame(streamID: "cam", frameIndex: UInt64(round))).encode(), requestID: "\(fid)-img"))
                records.append(record(SegflowTopics.prompts, key: fid, PromptRequest(requestID: "\(fid)-p", imageID: fid, boxes: [.init(x0: 10, y0: 10, x1: 100, y1: 90)],
                                                                                     frame: VideoFrame(streamID: "cam", frameIndex: UInt64(round))).encode(), requestID: "\(fid)-p"))
                wanted.insert("\(fid)-p")
            }
            try await cluster.send(records)
            if restartEvery > 0 && ContinuousClock.now - lastRestart > .seconds(restartEvery) {
                let victim = Bool.random() ? "decoder-1" : "decoder-2"
                cluster.kill9(victim)
                try cluster.start("segflow-prompt-decoder", name: victim, extra: decoder)
                lastRestart = ContinuousClock.now
            }
            if ContinuousClock.now - lastSample >= .seconds(10) {
                for (name, p) in cluster.processes where p.isRunning { rss[name, default: []].append(Self.rssMiB(p.processIdentifier)) }
                lastSample = ContinuousClock.now
            }
            try await Task.sleep(for: .seconds(interval))
        }
        // Drain: every request answered (the decoders' wait covers the backlog).
        let deadline = ContinuousClock.now + .seconds(300)
        var answered: [String: [MaskResult]] = [:]
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(5))
            let seen = try await cluster.collect(topic: SegflowTopics.masks, timeout: .seconds(30)) { Set(results($0).map(\.requestID)).isSuperset(of: wanted) }
            answered = Dictionary(grouping: results(seen).filter { wanted.contains($0.requestID) }, by: \.requestID)
            if Set(answered.keys) == wanted { break }
        }
        let lost = wanted.subtracting(answered.keys)
        XCTAssertEqual(lost, [], "lost requests")
        let errors = answered.values.flatMap { $0 }.compactMap(\.error)
        XCTAssertEqual(errors.map(\.message), [], "error answers")
        let differing = answered.filter { _, copies in copies.contains { $0.masks != copies[0].masks } }.keys
        XCTAssertEqual(Array(differing), [], "duplicates differ")
        // Idle CPU over 10 s.
        var idle: [String: Double] = [:]
        let before = cluster.processes.mapValues { Self.cpuTicks($0.processIdentifier) }
        try await Task.sleep(for: .seconds(10))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for (name, p) in cluster.processes { idle[name] = Double(Self.cpuTicks(p.processIdentifier) - (before[name] ?? 0)) / ticks / 10 * 100 }
        let duplicates = answered.values.map { $0.count - 1 }.reduce(0, +)
        print("soak: \(seconds) s, \(round) rounds, \(wanted.count) requests, \(lost.count) lost, \(duplicates) duplicates (identical: \(differing.isEmpty))")
        for name in rss.keys.sorted() { print("soak rss MiB \(name): \(rss[name]!.map(String.init).joined(separator: " ")); idle CPU \(String(format: "%.1f", idle[name] ?? -1)) %") }
        // Flat after warm-up: services never restarted (decoders restart every minute unless
        // SEGFLOW_SOAK_RESTART_S=0; each of their curves starts again and is bounded by the
        // cache instead).
        for name in ["encoder", "text"] + (restartEvery > 0 ? [] : ["decoder-1", "decoder-2"]) {
            guard let curve = rss[name], curve.count >= 9 else { continue }
            let third = curve.count / 3
            let early = curve[third..<(2 * third)].max()!, late = curve[(2 * third)...].max()!
            XCTAssertLessThanOrEqual(late, early + Self.flatRSSSlackMiB, "\(name) RSS grew after warm-up: \(curve)")
        }
    }
}
