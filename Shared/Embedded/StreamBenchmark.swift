import Backends
import Client
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline

/// `segflow bench --video`: a tracked stream end to end through the embedded broker (the
/// encoder working ahead of the decoder, `window` frames in flight) next to the in-process
/// ceiling (embed + track per frame, one after another), for 1 and 3 objects, measured
/// side by side in one run. Frames are a synthetic camera pan over one image.
public enum StreamBenchmark {
    public struct Row: Codable, Sendable {
        public var path: String
        public var objects: Int
        public var frames: Int
        public var framesPerSecond: Double
        /// Per frame: the frame's creation (client clock) to its answer being produced.
        public var latencyP50Ms: Double
        public var latencyP90Ms: Double
        public var latencyMaxMs: Double
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var precision: String
        public var frameSize: String
        public var window: Int
        public var rows: [Row]

        public var markdown: String {
            var s = "model: \(model), precision \(precision), frames \(frameSize), \(window) frames in flight over Kafka\n\n"
            s += "| path | objects | frames | frames/s | latency p50 ms | p90 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n"
            for r in rows {
                s += String(format: "| %@ | %d | %d | %.2f | %.0f | %.0f | %.0f |\n", r.path, r.objects, r.frames, r.framesPerSecond,
                            r.latencyP50Ms, r.latencyP90Ms, r.latencyMaxMs)
            }
            return s
        }
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
    }

    /// `count` frames of size `w`×`h`, panning across `image` (wrapping back) by `step` px.
    public static func pan(_ image: RGBImage, count: Int, width w: Int, height h: Int, step: Int = 8) throws -> [RGBImage] {
        let maxX = max(0, image.width - w), maxY = max(0, image.height - h)
        return try (0..<count).map { f in
            let x0 = maxX == 0 ? 0 : (f * step) % (2 * maxX) <= maxX ? (f * step) % (2 * maxX) : 2 * maxX - (f * step) % (2 * maxX)
            let y0 = maxY / 2
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for y in 0..<min(h, image.height) {
                let src = ((y + y0) * image.width + x0) * 3
                let n = min(w, image.width) * 3
                px.replaceSubrange((y * w * 3)..<(y * w * 3 + n), with: image.pixels[src..<(src + n)])
            }
            return try RGBImage(width: w, height: h, pixels: px)
        }
    }

    /// 1–3 boxes spread over the first frame.
    static func objects(_ n: Int, width w: Int, height h: Int) -> [ObjectPrompt] {
        (0..<n).map { i in
            let cx = Float(w) * (Float(i) + 0.5) / Float(n), bw = Float(w) / Float(n) * 0.7
            return ObjectPrompt(objectID: UInt32(i + 1), box: .init(x0: cx - bw / 2, y0: Float(h) * 0.2, x1: cx + bw / 2, y1: Float(h) * 0.8))
        }
    }

    public static func run(backend: any SegmentationBackend, frames: [RGBImage], objectCounts: [Int] = [1, 3], window: Int = 8,
                           precision: String, progress: @Sendable (String) -> Void) async throws -> Report {
        guard let first = frames.first else { throw ServingError(.invalidImage, "no frames to benchmark") }
        var logger = Logger(label: "segflow-bench")
        logger.logLevel = .error
        let pngs = try frames.map { try PNG.encode($0) }
        var rows: [Row] = []
        let stack = try await EmbeddedStack.start(backends: BackendSet([backend]), logger: logger)
        do {
            for n in objectCounts {
                let prompts = objects(n, width: first.width, height: first.height)
                progress("in-process, \(n) object(s)")
                var stream = try InProcessStream(backend: backend)
                var lat: [Double] = []
                let t0 = Timing.nowMs()
                for (i, f) in frames.enumerated() {
                    let s = Timing.nowMs()
                    _ = try stream.frame(f, index: UInt64(i), objects: i == 0 ? prompts : [])
                    lat.append(Timing.nowMs() - s)
                }
                let inMs = Timing.nowMs() - t0
                rows.append(Row(path: "in-process", objects: n, frames: frames.count, framesPerSecond: Double(frames.count) / (inMs / 1000),
                                latencyP50Ms: percentile(lat, 0.5), latencyP90Ms: percentile(lat, 0.9), latencyMaxMs: lat.max() ?? 0))

                progress("embedded broker, \(n) object(s)")
                var kafkaLat: [Double] = []
                var i = 0
                let k0 = Timing.nowMs()
                try await SegflowClient(client: stack.client, logger: logger).trackStream(
                    streamID: "bench-\(n)-\(UUID().uuidString.prefix(8))", model: backend.modelName, window: window,
                    next: {
                        guard i < pngs.count else { return nil }
                        defer { i += 1 }
                        return StreamFrame(image: .png(pngs[i]), objects: i == 0 ? prompts : [])
                    },
                    onResult: { _, r in kafkaLat.append(r.timings.totalMs) })
                let kMs = Timing.nowMs() - k0
                rows.append(Row(path: "embedded broker", objects: n, frames: frames.count, framesPerSecond: Double(frames.count) / (kMs / 1000),
                                latencyP50Ms: percentile(kafkaLat, 0.5), latencyP90Ms: percentile(kafkaLat, 0.9), latencyMaxMs: kafkaLat.max() ?? 0))
            }
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
        return Report(model: backend.modelName, precision: precision, frameSize: "\(first.width)×\(first.height)", window: window, rows: rows)
    }
}
