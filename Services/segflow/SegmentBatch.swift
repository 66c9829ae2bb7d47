import ArgumentParser
import Backends
import Client
import Embedded
import Foundation
import Imaging
import Logging
import Messaging
import Pipeline
import SAM

/// `segflow segment DIR|GLOB|FILE... --out-dir D`: the same point/box prompts on every
/// image, one set of outputs per image.
extension SegmentCommand {
    func validateBatch() throws {
        guard let outDir else { throw ValidationError("several images (a directory, a glob or more than one file) need --out-dir DIR") }
        if out != nil || overlay != nil || json != nil || saveLogits != nil {
            throw ValidationError("with --out-dir the outputs are per image (STEM.png, STEM.json, --overlays); drop --out/--overlay/--json/--save-logits")
        }
        if text != nil || !promptImages.isEmpty || !promptMasks.isEmpty || embedding != nil || maskInput != nil {
            throw ValidationError("folders and globs take --point/--box prompts; --text, --prompt-image, --embedding and --mask-input work on one image")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: outDir, isDirectory: &isDir), !isDir.boolValue {
            throw ValidationError("--out-dir \(outDir) is a file; give a directory")
        }
        do {
            if !points.isEmpty { try ModelRegistry.require(.points, model: model) }
            if !boxes.isEmpty { try ModelRegistry.require(.boxes, model: model) }
            if multimask { try ModelRegistry.require(.multimask, model: model) }
        } catch { throw ValidationError("\(error)") }
        if points.isEmpty && boxes.isEmpty { throw ValidationError("give at least one --point or --box") }
    }

    func runBatch(outDir: String) async throws {
        let set = try InputSet.resolve(images)
        for note in set.skipNotes { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        let prompts = try PromptParsing.prompts(points: points, boxes: boxes, multimask: multimask)
        // Every file and every prompt is checked before the model loads.
        var files: [ImageFile] = [], itemPrompts: [[SamPrompt]] = []
        for item in set.items {
            let f = try ImageFile.read(item.path)
            var p = prompts
            do { try Self.checkCoordinates(&p, width: f.header.width, height: f.header.height) } catch let e as ValidationError {
                throw ValidationError("\(item.path): \(e.message)")
            }
            files.append(f); itemPrompts.append(p)
        }
        try OutputPaths.prepare([(outDir as NSString).appendingPathComponent("x")])
        let brokers = self.brokers ?? ProcessInfo.processInfo.environment["SEGFLOW_BROKERS"]
        var logger = Logger(label: "segflow")
        logger.logLevel = verbose ? .info : .warning
        let progress = ProgressReporter(total: files.count, label: "segment", quiet: quiet)
        let t0 = Timing.nowMs()
        let backend = (inProcess || brokers == nil) ? try ModelRegistry.load(ModelLoadRequest(model: model, checkpoint: checkpoint, config: config)) : nil
        let loadMs = Timing.nowMs() - t0
        func request(_ i: Int) -> PromptRequest {
            let p = itemPrompts[i]
            return PromptRequest(requestID: "prm-" + UUID().uuidString, imageID: "image-" + UUID().uuidString,
                                 points: p.first?.points.map { .init(x: $0.x, y: $0.y, label: Int32($0.label)) } ?? [],
                                 boxes: p.compactMap { $0.box.map { .init(x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1) } },
                                 multimask: multimask, model: model)
        }
        var failures = 0
        // Writes one image's outputs and prints its speed line.
        func finish(_ i: Int, _ answer: Result<MaskResult, ServingError>, timings: StageTimings) throws {
            let item = set.items[i], f = files[i]
            progress.finish()
            switch answer {
            case let .failure(e):
                failures += 1
                FileHandle.standardError.write(Data("segflow: \(item.path): \(e)\n".data(using: .utf8)!))
            case let .success(r):
                var t = timings
                let tp = Timing.nowMs()
                let result = try SegmentationResult(maskResult: r, prompts: itemPrompts[i], width: f.header.width, height: f.header.height,
                                                    timingsMs: [:])
                let base = (outDir as NSString).appendingPathComponent(item.stem)
                try PNG.write(try result.unionMask(), toFile: base + ".png")
                if overlays { try PNG.write(try Overlay.render(try f.decode(), masks: try result.bestMasks()), toFile: base + "_overlay.png") }
                t["postprocess"] = Timing.nowMs() - tp
                var withTimings = result
                withTimings.timingsMs = t.ms
                try withTimings.jsonData().write(to: URL(fileURLWithPath: base + ".json"))
                let area = try result.bestMasks().reduce(0) { $0 + $1.area }
                print(StageTimings.imageLine(index: i + 1, total: files.count, name: item.path, width: f.header.width, height: f.header.height,
                                             summary: "\(result.prompts.count) prompt(s), best-mask area \(area)", timings: t))
            }
            progress.advance(item.stem)
        }
        if inProcess, let backend {
            for i in files.indices {
                let tp = Timing.nowMs()
                let img = try files[i].decode()
                let pre = Timing.nowMs() - tp
                let answer: Result<MaskResult, ServingError>
                var t = StageTimings(["preprocess": pre])
                do {
                    let r = try backend.segment(img, request: request(i))
                    t["encode"] = r.encodeMs; t["decode"] = r.decodeMs
                    answer = .success(r.result)
                } catch let e as ServingError { answer = .failure(e) }
                try finish(i, answer, timings: t)
            }
        } else {
            let items = files.indices.map { SegflowClient.BatchItem(image: .png(files[$0].bytes), prompt: request($0)) }
            try await EmbeddedStack.withKafka(brokers: brokers, logger: logger, backends: { BackendSet([backend!]) }) { client in
                try await SegflowClient(client: client, logger: logger).segmentBatch(items, timeout: .seconds(timeout)) { i, answer in
                    // The services decode the image and run the encoder; the wire reports encode and decode.
                    try finish(i, answer, timings: (try? answer.get()).map { StageTimings(wire: $0.timings) } ?? StageTimings())
                }
            }
        }
        progress.finish()
        let via = inProcess ? "in-process" : brokers == nil ? "embedded broker" : "brokers \(brokers!)"
        print(String(format: "%d image(s), %d failed, model %@ via %@ (load %.0f ms, total %.1f s); outputs in %@",
                     files.count, failures, model, via, loadMs, (Timing.nowMs() - t0) / 1000, outDir))
        if failures > 0 { throw ExitCode.failure }
    }
}
