import ArgumentParser
import Backends
import Client
import Embedded
import Foundation
import Logging
import Messaging
import Pipeline
import SAM

/// `segflow everything DIR|GLOB|FILE... --out-dir D`: amg.py's folder layout per image.
extension EverythingCommand {
    func runBatch(outDir: String) async throws {
        let set = try InputSet.resolve(images)
        for note in set.skipNotes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        let files = try set.items.map { try ImageFile.read($0.path) }
        try OutputPaths.prepare([(outDir as NSString).appendingPathComponent("x")])
        // amg.py refuses to overwrite an image's folder (os.makedirs(exist_ok=False)); so do we,
        // before any compute.
        for item in set.items where FileManager.default.fileExists(atPath: (outDir as NSString).appendingPathComponent(item.stem)) {
            throw ValidationError("\((outDir as NSString).appendingPathComponent(item.stem)) exists; amg.py's layout writes a new folder per image (remove it or pick another --out-dir)")
        }
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        let local = inProcess || cropNLayers > 0
        if cropNLayers > 0 && !inProcess {
            FileHandle.standardError.write("segflow: --crop-n-layers > 0 runs in-process (each crop needs its own embedding)\n".data(using: .utf8)!)
        }
        var logger = Logger(label: "segflow")
        logger.logLevel = .warning
        let progress = ProgressReporter(total: files.count, label: "everything", quiet: quiet)
        let t0 = Timing.nowMs()
        let backend = (local || brokers == nil) ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint)) : nil
        let loadMs = Timing.nowMs() - t0
        var failures = 0, total = 0
        func finish(_ i: Int, _ answer: Result<[AutomaticMaskGenerator.MaskRecord], Error>, timings: StageTimings) throws {
            let item = set.items[i], f = files[i]
            progress.finish()
            switch answer {
            case let .failure(e):
                failures += 1
                FileHandle.standardError.write(Data("segflow: \(item.path): \(e)\n".utf8))
            case let .success(records):
                var t = timings
                let tp = Timing.nowMs()
                try AMGFolder.write(records, to: (outDir as NSString).appendingPathComponent(item.stem))
                try AutomaticMaskGenerator.json(records).write(to: URL(fileURLWithPath: (outDir as NSString).appendingPathComponent(item.stem + ".json")))
                t["postprocess"] = Timing.nowMs() - tp
                total += records.count
                print(StageTimings.imageLine(index: i + 1, total: files.count, name: item.path, width: f.header.width, height: f.header.height,
                                             summary: "\(records.count) masks", timings: t))
            }
            progress.advance(item.stem)
        }
        if local {
            guard let sam = (backend as? SAMBackend)?.sam else { throw ValidationError("model \(model) has no automatic mask generator") }
            let generator = try AutomaticMaskGenerator(sam, parameters: generatorParameters)
            for i in files.indices {
                let tp = Timing.nowMs()
                let img = try files[i].decode()
                var t = StageTimings(["preprocess": Timing.nowMs() - tp])
                let answer: Result<[AutomaticMaskGenerator.MaskRecord], Error>
                do {
                    if cropNLayers == 0 {
                        // The services' split: the encoder once, then the grid of prompts.
                        let te = Timing.nowMs()
                        let embedding = try sam.embed(rgb: img.pixels, width: img.width, height: img.height)
                        t["encode"] = Timing.nowMs() - te
                        let td = Timing.nowMs()
                        answer = .success(try generator.generate(embedding: embedding))
                        t["decode"] = Timing.nowMs() - td
                    } else {
                        // Every crop runs the encoder: one stage, reported as decode.
                        let td = Timing.nowMs()
                        answer = .success(try generator.generate(rgb: img.pixels, width: img.width, height: img.height))
                        t["decode"] = Timing.nowMs() - td
                    }
                } catch { answer = .failure(error) }
                try finish(i, answer, timings: t)
            }
        } else {
            let items = files.indices.map { i in
                SegflowClient.BatchItem(image: .png(files[i].bytes),
                                        prompt: PromptRequest(requestID: "all-" + UUID().uuidString, imageID: "image-" + UUID().uuidString,
                                                              model: model, everything: wireParameters))
            }
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: { BackendSet([backend!]) }) { client in
                try await SegflowClient(client: client, logger: logger).segmentBatch(items, timeout: .seconds(timeout)) { i, answer in
                    let records = answer.mapError { $0 as Error }.flatMap { r in Result { try Conversions.records(r.masks) } }
                    try finish(i, records, timings: (try? answer.get()).map { StageTimings(wire: $0.timings) } ?? StageTimings())
                }
            }
        }
        progress.finish()
        let via = local ? "in-process" : brokers == nil ? "embedded broker" : "brokers \(brokers!)"
        print(String(format: "%d image(s), %d masks, %d failed, model %@ via %@ (load %.0f ms, total %.1f s); outputs in %@",
                     files.count, total, failures, model, via, loadMs, (Timing.nowMs() - t0) / 1000, outDir))
        if failures > 0 { throw ExitCode.failure }
    }
}
