import Foundation
import Imaging
import Messaging
import SAM
import Tensor

extension SAMBackend {
    public var streamTracker: (any StreamTracker)? { SAMStreamTracker(backend: self) }
}

/// SAM-family stream tracking: one `SamPrompt` per object per frame, all objects of a
/// frame decoded in one batch from the frame's embedding.
struct SAMStreamTracker: StreamTracker {
    let backend: SAMBackend

    /// State format: "SFT1", object count (u32), then per object (ascending id): id (u32),
    /// box x0 y0 x1 y1 (f32), low-res logits side (u32), side² f32 — all little-endian.
    static let magic: [UInt8] = Array("SFT1".utf8)

    struct Object: Equatable {
        var id: UInt32
        var box: (Float, Float, Float, Float)?
        var logits: [Float]
        static func == (a: Object, b: Object) -> Bool {
            a.id == b.id && a.logits == b.logits && a.box.map { [$0.0, $0.1, $0.2, $0.3] } == b.box.map { [$0.0, $0.1, $0.2, $0.3] }
        }
    }

    func maxStateBytes(objects: Int) -> Int {
        8 + objects * (4 + 16 + 4 + backend.maskSide * backend.maskSide * 4)
    }

    func track(frameIndex: UInt64, embedding: any BackendEmbedding, state: [UInt8]?, track: StreamTrack) throws(ServingError) -> TrackedFrame {
        try backend.checkOwnership(embedding, imageID: "frame \(frameIndex)")
        guard let emb = embedding as? SAM.ImageEmbedding else { throw ServingError(.internal, "not a SAM embedding") }
        var objects = try state.map { bytes throws(ServingError) in try Self.decode(bytes, side: backend.maskSide) } ?? []
        if state == nil && track.objects.isEmpty {
            throw ServingError(.streamNotFound, "frame \(frameIndex) has no state and names no objects: start a stream with at least one object prompt")
        }
        for id in track.removeObjects {
            guard let i = objects.firstIndex(where: { $0.id == id }) else {
                throw ServingError(.invalidPrompt, "frame \(frameIndex) removes object \(id), which the stream does not track (tracked: \(objects.map(\.id)))")
            }
            objects.remove(at: i)
        }
        let (w, h) = (emb.originalSize.width, emb.originalSize.height)
        var prompts: [UInt32: SamPrompt] = [:]
        var started = Set<UInt32>()
        for o in track.objects {
            for p in o.points where !(p.x.isFinite && p.y.isFinite && p.x >= 0 && p.y >= 0 && p.x < Float(w) && p.y < Float(h)) || !(p.label == 0 || p.label == 1) {
                throw ServingError(.invalidPrompt, "object \(o.objectID): point (\(p.x), \(p.y)) label \(p.label) is not a point of the \(w)×\(h) frame with label 0 or 1")
            }
            if let b = o.box, !([b.x0, b.y0, b.x1, b.y1].allSatisfy(\.isFinite) && b.x0 < b.x1 && b.y0 < b.y1) {
                throw ServingError(.invalidPrompt, "object \(o.objectID): box (\(b.x0), \(b.y0), \(b.x1), \(b.y1)) is empty or not finite")
            }
            prompts[o.objectID] = SamPrompt(points: o.points.map { .init(x: $0.x, y: $0.y, label: Int($0.label)) },
                                            box: o.box.map { ($0.x0, $0.y0, $0.x1, $0.y1) })
            started.insert(o.objectID)
            if !objects.contains(where: { $0.id == o.objectID }) { objects.append(Object(id: o.objectID, box: nil, logits: [])) }
        }
        guard objects.count <= StreamTrack.maxObjects else {
            throw ServingError(.invalidPrompt, "the stream would track \(objects.count) objects; at most \(StreamTrack.maxObjects)")
        }
        objects.sort { $0.id < $1.id }
        let side = backend.maskSide
        // Objects lost earlier (no box, no logits) and not prompted again stay lost.
        var batch: [SamPrompt] = [], batchIndex: [Int: Int] = [:]
        for (i, o) in objects.enumerated() {
            if let p = prompts[o.id] {
                batchIndex[i] = batch.count; batch.append(p)
            } else if let box = o.box {
                // Interim rule (the previous frame's mask box and low-res logits).
                batchIndex[i] = batch.count
                batch.append(SamPrompt(box: box, maskInput: o.logits.isEmpty ? nil : Tensor(shape: [1, 1, side, side], data: o.logits)))
            }
        }
        let preds: [SamPrediction]
        do { preds = batch.isEmpty ? [] : try backend.sam.predict(emb, batch) } catch { throw ServingError(.invalidPrompt, "\(error)") }
        var masks: [MaskResult.Mask] = []
        do {
            for i in objects.indices {
                var mask = try BinaryMask(width: w, height: h, values: [UInt8](repeating: 0, count: w * h))
                var (iou, stability): (Float, Float) = (0, 0)
                var best = 0
                if let bi = batchIndex[i] {
                    let p = preds[bi]
                    best = p.bestMaskIndex
                    let m = try BinaryMask(width: w, height: h, values: p.mask(best))
                    if m.area > 0 { mask = m; iou = p.iouPredictions[best]; stability = p.stabilityScore(best) }
                }
                let lost = mask.area == 0
                var wire = try WireMask.encode(mask, format: track.outputFormat, predictedIoU: iou, stabilityScore: stability)
                wire.objectID = objects[i].id
                wire.trackStatus = lost ? .lost : (started.contains(objects[i].id) ? .started : .tracked)
                masks.append(wire)
                if lost {
                    objects[i].box = nil; objects[i].logits = []
                } else if let bi = batchIndex[i] {
                    let b = mask.boundingBox
                    objects[i].box = (Float(b.x), Float(b.y), Float(b.x + b.width - 1), Float(b.y + b.height - 1))
                    objects[i].logits = Array(preds[bi].lowResLogits.data[(best * side * side)..<((best + 1) * side * side)])
                }
            }
        } catch let e as ServingError { throw e } catch { throw ServingError(.internal, "\(error)") }
        return TrackedFrame(masks: masks, state: Self.encode(objects, side: side))
    }

    static func encode(_ objects: [Object], side: Int) -> [UInt8] {
        var out = magic
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func f32(_ v: Float) { u32(v.bitPattern) }
        u32(UInt32(objects.count))
        for o in objects {
            u32(o.id)
            let b = o.box ?? (.nan, .nan, .nan, .nan)
            f32(b.0); f32(b.1); f32(b.2); f32(b.3)
            u32(o.logits.isEmpty ? 0 : UInt32(side))
            for v in o.logits { f32(v) }
        }
        return out
    }

    static func decode(_ bytes: [UInt8], side: Int) throws(ServingError) -> [Object] {
        var at = 0
        func bad(_ why: String) -> ServingError { ServingError(.invalidPrompt, "stream state (\(bytes.count) bytes) is unreadable: \(why)") }
        func u32() throws(ServingError) -> UInt32 {
            guard at + 4 <= bytes.count else { throw bad("truncated at byte \(at)") }
            defer { at += 4 }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        guard bytes.count >= 8, Array(bytes[0..<4]) == magic else { throw bad("not an SFT1 state") }
        at = 4
        let n = try u32()
        guard n <= UInt32(StreamTrack.maxObjects) else { throw bad("\(n) objects, over \(StreamTrack.maxObjects)") }
        var objects: [Object] = []
        for _ in 0..<n {
            let id = try u32()
            let b = (Float(bitPattern: try u32()), Float(bitPattern: try u32()), Float(bitPattern: try u32()), Float(bitPattern: try u32()))
            let s = try u32()
            guard s == 0 || Int(s) == side else { throw bad("logits side \(s), this model's is \(side)") }
            var logits: [Float] = []
            if s > 0 {
                guard at + side * side * 4 <= bytes.count else { throw bad("truncated logits of object \(id)") }
                logits.reserveCapacity(side * side)
                for _ in 0..<(side * side) { logits.append(Float(bitPattern: try u32())) }
            }
            objects.append(Object(id: id, box: b.0.isNaN ? nil : b, logits: logits))
        }
        guard at == bytes.count else { throw bad("\(bytes.count - at) trailing bytes") }
        return objects
    }
}
