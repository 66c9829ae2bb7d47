import Backends
import Serving
import Client
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM

/// `segflow bench --pipeline`: what Kafka costs on top of the model, all on loopback
/// through the embedded broker, measured side by side in one run.
public enum PipelineBenchmark {
    public struct Row: Codable, Sendable {
        public var measure: String
        public var runs: Int
        public var medianMs: Double
        public var minMs: Double
        public var maxMs: Double
        public var note: String
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var rows: [Row]
        public var throughput: [String: Double]  // "1 decoder" → prompts/s

        public var markdown: String {
            var s = "model: \(model)\n\n| measure | runs | median ms | min ms | max ms | note |\n|---|---:|---:|---:|---:|---|\n"
            for r in rows {
                s += String(format: "| %@ | %d | %.2f | %.2f | %.2f | %@ |\n", r.measure, r.runs, r.medianMs, r.minMs, r.maxMs, r.note)
            }
            s += "\n| decoder processes | prompts/s |\n|---|---:|\n"
            for (k, v) in throughput.sorted(by: { $0.key < $1.key }) { s += String(format: "| %@ | %.2f |\n", k, v) }
            return s
        }
    }

    static func row(_ name: String, _ samples: [Double], _ note: String) -> Row {
        Row(measure: name, runs: samples.count, medianMs: Timing.median(samples), minMs: samples.min() ?? 0,
            maxMs: samples.max() ?? 0, note: note)
    }

    public static func run(model kind: SamModelKind, checkpoint: String?, runs: Int = 5, throughputPrompts: Int = 24,
                           binDir: URL, progress: @Sendable (String) -> Void) async throws -> Report {
        var logger = Logger(label: "segflow-bench")
        logger.logLevel = .error
        let sam = try ModelStore.load(kind, checkpoint: checkpoint)
        let (w, h) = (1024, 768)
        let rgb = Benchmark.syntheticImage(width: w, height: h)
        let png = try PNG.encode(try RGBImage(width: w, height: h, pixels: rgb))
        let box = PromptRequest.Box(x0: 200, y0: 150, x1: 700, y1: 600)
        var rows: [Row] = []

        progress("in-process: embed + decode")
        var inProc: [Double] = []
        for _ in 0..<runs {
            let t0 = Timing.nowMs()
            let emb = try sam.embed(rgb: rgb, width: w, height: h)
            _ = try sam.predict(emb, SamPrompt(box: (200, 150, 700, 600)))
            inProc.append(Timing.nowMs() - t0)
        }
        rows.append(row("in-process: embed + 1 box", inProc, "no Kafka"))

        progress("embedded broker: end to end")
        let stack = try await EmbeddedStack.start(backends: BackendSet([SAMBackend(sam)]), logger: logger)
        let client = stack.client
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let sc = SegflowClient(client: client, logger: logger)
        let replies = try await sc.openReplies()
        // Warm-up: group joins and the first fetches happen here, not in the timings.
        _ = try await roundTrip(producer, replies, image: png, imageID: "warm", box: box)
        var e2e: [Double] = []
        for i in 0..<runs { e2e.append(try await roundTrip(producer, replies, image: png, imageID: "e2e-\(i)", box: box).total) }
        rows.append(row("Kafka: image + 1 box, submit → mask", e2e, "embedded broker, services in-process"))

        progress("embedded broker: prompts on a cached embedding")
        var overhead: [Double] = [], cachedRT: [Double] = []
        for _ in 0..<max(runs, 10) {
            let r = try await roundTrip(producer, replies, image: nil, imageID: "e2e-0", box: box)
            cachedRT.append(r.total)
            overhead.append(r.total - r.decodeMs)
        }
        rows.append(row("Kafka: 1 box on cached embedding, submit → mask", cachedRT, "includes decode"))
        rows.append(row("Kafka messaging overhead per prompt", overhead, "round trip − decoder's decode_ms"))

        progress("embedding hop (4 MiB f32)")
        try await stack.broker.createTopics([TopicSpec(name: "bench.embeddings", partitions: 1)])
        let hopConsumer = try Consumer(config: ConsumerConfig(client: client, groupID: "bench-hop-\(UUID().uuidString)", autoOffsetReset: .latest),
                                       topics: ["bench.embeddings"])
        try await SegflowClient.waitUntilPositioned(hopConsumer, topic: "bench.embeddings", client: client, timeout: .seconds(30))
        let tensorBytes = [UInt8](repeating: 7, count: 256 * 64 * 64 * 4)
        var hops: [Double] = []
        var iterator = hopConsumer.messages.makeAsyncIterator()
        for i in 0..<runs {
            let emb = Messaging.ImageEmbedding(requestID: "hop-\(i)", imageID: "hop-\(i)", model: kind.rawValue, originalHeight: 1,
                                               originalWidth: 1, inputHeight: 1, inputWidth: 1, dtype: .f32,
                                               shape: [256, 64, 64], data: tensorBytes)
            var assembler = EmbeddingAssembler()
            let t0 = Timing.nowMs()
            _ = try await producer.sendEmbedding(emb, topic: "bench.embeddings")
            while let m = try await iterator.next() {
                guard let chunk = try? Messaging.ImageEmbedding(bytes: m.value) else { continue }  // stray markers
                if case .complete = try assembler.add(chunk) { break }
            }
            hops.append(Timing.nowMs() - t0)
        }
        await hopConsumer.shutdown()
        rows.append(row("embedding hop, 4 MiB f32 (8 chunks), produce → reassembled", hops, "loopback"))
        await replies.shutdown()
        await producer.close()
        await stack.stop()

        var throughput: [String: Double] = [:]
        for decoders in [1, 2] {
            progress("throughput with \(decoders) decoder process(es)")
            throughput["\(decoders) decoder\(decoders > 1 ? "s" : "")"] =
                try await measureThroughput(sam: sam, decoders: decoders, prompts: throughputPrompts, png: png, binDir: binDir,
                                            checkpoint: checkpoint, logger: logger)
        }
        return Report(model: kind.rawValue, rows: rows, throughput: throughput)
    }

    struct RoundTrip { var total: Double; var decodeMs: Double }

    static func roundTrip(_ producer: Producer, _ replies: Consumer, image: [UInt8]?, imageID: String,
                          box: PromptRequest.Box) async throws -> RoundTrip {
        let id = "bench-" + UUID().uuidString
        let t0 = Timing.nowMs()
        if let image {
            let req = ImageRequest(requestID: "img-" + id, imageID: imageID, image: .png(image))
            _ = try await producer.send(ProducerRecord(topic: SegflowTopics.images, key: imageID, value: req.encode()))
        }
        let prompt = PromptRequest(requestID: id, imageID: imageID, boxes: [box])
        _ = try await producer.send(ProducerRecord(topic: SegflowTopics.prompts, key: imageID, value: prompt.encode()))
        for try await m in replies.messages {
            guard let r = try? MaskResult(bytes: m.value), r.requestID == id else { continue }
            if let e = r.error { throw ServingError(e.code, e.message) }
            return RoundTrip(total: Timing.nowMs() - t0, decodeMs: r.timings.decodeMs)
        }
        throw ServingError(.timeout, "reply stream ended")
    }

    /// Prompts per second with `decoders` separate decoder processes on warm caches.
    static func measureThroughput(sam: Sam, decoders: Int, prompts: Int, png: [UInt8], binDir: URL, checkpoint: String?,
                                  logger: Logger) async throws -> Double {
        let broker = try EmbeddedBroker()
        try await broker.createTopics(SegflowTopics.specs(partitions: 4))
        let client = broker.clientConfig(clientID: "bench")
        let encoder = Task { try? await ImageEncoderService(backends: BackendSet([SAMBackend(sam)]), client: client, logger: logger).run() }
        var children: [Process] = []
        for _ in 0..<decoders {
            let p = Process()
            p.executableURL = binDir.appendingPathComponent("segflow-prompt-decoder")
            p.arguments = ["--brokers", broker.bootstrapServers, "--model", sam.kind.rawValue, "--log-level", "error"]
                + (checkpoint.map { ["--checkpoint", $0] } ?? [])
            try p.run()
            children.append(p)
        }
        let producer = try Producer(config: ProducerConfig(client: client, lingerMs: 0))
        let replies = try await SegflowClient(client: client, logger: logger).openReplies()
        // Warm every decoder: 4 images spread over the partitions, one prompt each.
        let images = (0..<4).map { "tp-\($0)" }
        for id in images { _ = try await roundTrip(producer, replies, image: png, imageID: id, box: .init(x0: 10, y0: 10, x1: 500, y1: 400)) }
        var ids = Set<String>()
        let t0 = Timing.nowMs()
        for i in 0..<prompts {
            let id = "tp-prompt-\(i)"
            ids.insert(id)
            let p = PromptRequest(requestID: id, imageID: images[i % images.count],
                                  points: [.init(x: Float(20 + 30 * (i % 20)), y: Float(20 + 25 * (i % 25)), label: 1)])
            _ = try await producer.send(ProducerRecord(topic: SegflowTopics.prompts, key: p.imageID, value: p.encode()))
        }
        for try await m in replies.messages {
            if let r = try? MaskResult(bytes: m.value) { ids.remove(r.requestID) }
            if ids.isEmpty { break }
        }
        let rate = Double(prompts) / ((Timing.nowMs() - t0) / 1000)
        // Orderly teardown: clients and services first, the broker last.
        await replies.shutdown()
        await producer.close()
        for c in children where c.isRunning { c.terminate() }
        for c in children { c.waitUntilExit() }
        encoder.cancel()
        await encoder.value
        broker.stop()
        return rate
    }
}
