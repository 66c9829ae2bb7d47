import Foundation
import Imaging
import SAM

/// A user's prompt for one object on one frame: a new object, or a correction that
/// re-anchors an existing one. Coordinates are frame pixels; the box uses SAM's
/// convention (inclusive corners, as `segflow track --box`).
public struct TrackerPrompt: Sendable, Equatable {
    public struct Box: Sendable, Equatable {
        public var x0: Float, y0: Float, x1: Float, y1: Float
        public init(x0: Float, y0: Float, x1: Float, y1: Float) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }
    }
    public var points: [SamPrompt.Point]
    public var box: Box?
    public init(points: [SamPrompt.Point] = [], box: Box? = nil) { self.points = points; self.box = box }
}

/// What happened to an object on a frame.
public enum TrackerStatus: String, Sendable, Equatable, CaseIterable {
    /// First frame of a new object (its mask comes from the user's prompt).
    case started
    /// Followed from its memory; the mask passed the checks.
    case tracked
    /// A correction on this frame re-anchored the object.
    case corrected
    /// Lost on an earlier frame and found again on this one.
    case reacquired
    /// Not visible or no trustworthy mask: the mask is empty.
    case lost
}

public struct FrameObjectResult: Sendable, Equatable {
    public var objectID: UInt32
    /// Empty when `status == .lost`.
    public var mask: BinaryMask
    /// The decoder's predicted IoU for the chosen mask (0 when nothing was decoded).
    public var score: Float
    public var status: TrackerStatus
    /// The box the decoder was prompted with; for a lost object the best appearance match
    /// (not decoded), nil when no search ran.
    public var promptBox: TrackBox?
    /// Appearance similarity of that box to the object's templates (nil for user prompts
    /// and when no search ran).
    public var appearance: Float?
}

/// Multi-object tracking over a SAM-family decoder, driven from each frame's image
/// embedding and a batched predict closure — it never runs a model itself, so the
/// prompt-decoder can drive it from a cached embedding.
///
/// Per frame and object (README, Video): the motion model (a Theil–Sen line through the
/// last good boxes) predicts the box; the embedding is searched around it for the box
/// whose features best match the object's appearance templates (the anchor's and a
/// running one); that box prompts the decoder (single and multimask output, all objects
/// in one `predict` call); the mask most consistent with the object's reference shape
/// (majority of the anchor and recent shapes, drawn into the matched box) is accepted if
/// it is consistent enough and of plausible area. Otherwise — or when the appearance
/// match is weak or the box has left the view — the object is lost (empty mask), and
/// later frames search the whole frame for it, re-acquiring it only on a strong match
/// whose mask is (more strictly) consistent with the remembered shape. The mask input is not used: feeding back the
/// previous logits compounds errors (the measured failure of the old VideoTracker).
public struct ObjectTracker: Sendable {
    public var config: TrackerConfig
    public init(config: TrackerConfig = .init()) { self.config = config }

    public typealias Predict = ([SamPrompt]) throws -> [SamPrediction]

    private enum Plan {
        case anchor(TrackerPrompt, corrected: Bool)
        case track(box: TrackBox, appearance: Float)
        case search(box: TrackBox, appearance: Float)
        /// Not decoded; the best appearance match (if a search ran) for diagnostics.
        case lost(box: TrackBox?, appearance: Float?)
    }

    /// Frame `frameIndex` (strictly after the last one; gaps are fine) with its embedding.
    /// `add` starts new objects, `correct` re-anchors existing ones; then every object is
    /// judged as described above, with at most one `predict` call. Throws TrackerError on
    /// bad input before anything changes.
    public func step(state: inout StreamState, frameIndex: UInt64, embedding: ImageEmbedding,
                     add: [UInt32: TrackerPrompt] = [:], correct: [UInt32: TrackerPrompt] = [:],
                     predict: Predict) throws -> [FrameObjectResult] {
        let (w, h) = (embedding.originalSize.width, embedding.originalSize.height)
        try validate(state: state, frameIndex: frameIndex, width: w, height: h, add: add, correct: correct)
        let grid = try FeatureGrid(embedding)
        if !state.objects.isEmpty, grid.channels != state.channels { throw TrackerError.embeddingShape(embedding.embedding.shape) }

        var objects = state.objects
        for id in add.keys.sorted() {
            objects.append(ObjectState(id: id, isLost: false, lastGoodFrame: frameIndex, history: [], anchorShape: [], shapes: [],
                                       anchorAppearance: [], recentAppearance: []))
        }
        objects.sort { $0.id < $1.id }
        var layout = state
        layout.shapeSide = config.shapeSide; layout.appearancePoints = config.appearancePoints; layout.channels = grid.channels

        // 1. Plan each object's prompt from its memory (or the user's prompt).
        var plans: [Plan] = []
        for o in objects {
            if let p = add[o.id] { plans.append(.anchor(p, corrected: false)); continue }
            if let p = correct[o.id] { plans.append(.anchor(p, corrected: true)); continue }
            plans.append(plan(o, frameIndex: frameIndex, grid: grid, width: w, height: h))
        }

        // 2. One decoder call for every object's prompts.
        var prompts: [SamPrompt] = [], owner: [Int] = []
        for (i, p) in plans.enumerated() {
            switch p {
            case let .anchor(op, _):
                let box = op.box.map { (x0: $0.x0, y0: $0.y0, x1: $0.x1, y1: $0.y1) }
                prompts.append(SamPrompt(points: op.points, box: box, multimask: box == nil)); owner.append(i)
            case let .track(box, _), let .search(box, _):
                let b = outset(box, objects[i].promptOutsets).clipped(width: w, height: h).samBox
                prompts.append(SamPrompt(box: b)); owner.append(i)
                prompts.append(SamPrompt(box: b, multimask: true)); owner.append(i)
            case .lost: break
            }
        }
        let predictions = prompts.isEmpty ? [] : try predict(prompts)
        guard predictions.count == prompts.count else { throw TrackerError.predictionCount(expected: prompts.count, actual: predictions.count) }
        var candidates = [[(mask: [UInt8], iou: Float)]](repeating: [], count: objects.count)
        for (k, p) in predictions.enumerated() {
            guard p.logits.rank == 3, p.logits.shape[1] == h, p.logits.shape[2] == w, p.iouPredictions.count == p.logits.shape[0] else {
                throw TrackerError.predictionShape(expected: [h, w], actual: p.logits.shape)
            }
            for m in 0..<p.maskCount { candidates[owner[k]].append((p.mask(m), p.iouPredictions[m])) }
        }

        // 3. Judge and update.
        var results: [FrameObjectResult] = []
        let empty = try BinaryMask(width: w, height: h)
        for (i, plan) in plans.enumerated() {
            var o = objects[i]
            var result = FrameObjectResult(objectID: o.id, mask: empty, score: 0, status: .lost, promptBox: nil, appearance: nil)
            switch plan {
            case let .anchor(prompt, corrected):
                let best = candidates[i].indices.max { candidates[i][$0].iou < candidates[i][$1].iou }!
                let c = candidates[i][best]
                let fallback = prompt.box.map { TrackBox(x0: $0.x0, y0: $0.y0, x1: $0.x1 + 1, y1: $0.y1 + 1) }
                o = anchored(o, mask: c.mask, fallbackBox: fallback, frameIndex: frameIndex, grid: grid, width: w, height: h)
                result.status = o.isLost ? .lost : (corrected ? .corrected : .started)
                result.promptBox = fallback
                if !o.isLost { result.mask = try BinaryMask(width: w, height: h, values: c.mask); result.score = c.iou }
            case let .track(box, appearance), let .search(box, appearance):
                result.promptBox = box; result.appearance = appearance
                let searching: Bool = if case .search = plan { true } else { false }
                if let (c, observed) = judge(o, candidates[i], box: box, searching: searching, width: w, height: h) {
                    o = accepted(o, mask: c.mask, observed: observed, frameIndex: frameIndex, grid: grid, width: w, height: h, reset: searching)
                    result.mask = try BinaryMask(width: w, height: h, values: c.mask); result.score = c.iou
                    result.status = searching ? .reacquired : .tracked
                } else {
                    o.isLost = true
                }
            case let .lost(box, appearance):
                result.promptBox = box; result.appearance = appearance
                o.isLost = true
            }
            objects[i] = o
            results.append(result)
        }
        layout.objects = objects
        layout.width = w; layout.height = h; layout.lastFrameIndex = frameIndex
        state = layout
        return results
    }

    // MARK: - Planning

    private func templates(_ o: ObjectState, channels: Int) -> [[Float]] {
        [Quantized.decode(o.anchorAppearance, channels: channels), Quantized.decode(o.recentAppearance, channels: channels)]
    }

    /// Motion prediction: a robust line through the recent boxes (centre and log size),
    /// kept within a few frame sizes of the frame (a long gap must not extrapolate to
    /// infinity).
    func predictedBox(_ o: ObjectState, at frame: UInt64, width: Int, height: Int) -> TrackBox {
        let ts = o.history.map { Double($0.frameIndex) - Double(o.history.last!.frameIndex) }
        let t = Double(frame) - Double(o.history.last!.frameIndex)
        func fit(_ f: (TrackBox) -> Double) -> Double { RobustLine.predict(ts: ts, ys: o.history.map { f($0.box) }, at: t) }
        let (fw, fh) = (Double(width), Double(height)), long = max(fw, fh)
        func clamp(_ v: Double, _ lo: Double, _ hi: Double) -> Double { v.isFinite ? min(max(v, lo), hi) : lo }
        let cx = clamp(fit { Double($0.centerX) }, -2 * fw, 3 * fw), cy = clamp(fit { Double($0.centerY) }, -2 * fh, 3 * fh)
        let bw = exp(clamp(fit { log(Double($0.width)) }, 0, log(2 * long)))
        let bh = exp(clamp(fit { log(Double($0.height)) }, 0, log(2 * long)))
        return TrackBox(center: Float(cx), Float(cy), width: Float(bw), height: Float(bh))
    }

    private func plan(_ o: ObjectState, frameIndex: UInt64, grid: FeatureGrid, width: Int, height: Int) -> Plan {
        let tmpl = templates(o, channels: grid.channels)
        let p = config.appearancePoints
        if !o.isLost {
            let predicted = predictedBox(o, at: frameIndex, width: width, height: height)
            guard predicted.visibleFraction(width: width, height: height) >= config.minVisibleFraction else { return .lost(box: predicted, appearance: nil) }
            let radius = max(config.searchRadiusFraction * max(predicted.width, predicted.height), config.minSearchRadiusCells / grid.cellsPerPixel)
            // Around the motion prediction and around the last sighting (the motion may have stopped or reversed).
            let last = o.history.last!.box
            let centers = predicted == last ? [predicted]
                : [predicted, TrackBox(center: last.centerX, last.centerY, width: predicted.width, height: predicted.height)]
            var (score, box) = grid.search(around: centers, radius: radius, scales: config.searchScales, templates: tmpl, points: p,
                                           maxSteps: config.searchSteps)
            // Keep the predicted box unless the search found clearly better evidence: the
            // search's grid is coarse for large objects, and a still object should keep still.
            let atPrediction = grid.score(predicted, templates: tmpl, points: p)
            if atPrediction >= score - config.appearanceTieMargin { (score, box) = (atPrediction, predicted) }
            guard score >= config.minAppearanceScore, box.visibleFraction(width: width, height: height) >= config.minVisibleFraction else {
                return .lost(box: box, appearance: score)
            }
            return .track(box: box, appearance: score)
        }
        // Lost: search the whole frame at scales around the last good size.
        let long = Float(max(width, height))
        let lastBox = o.history.last!.box
        let last = TrackBox(x0: 0, y0: 0, x1: min(max(lastBox.width, 1), 2 * long), y1: min(max(lastBox.height, 1), 2 * long))
        let frame = TrackBox(x0: 0, y0: 0, x1: Float(width), y1: Float(height))
        let radius = max(frame.width, frame.height) / 2 + max(last.width, last.height)
        let centred = TrackBox(center: frame.centerX, frame.centerY, width: last.width, height: last.height)
        let (score, box) = grid.search(around: [centred], radius: radius, scales: config.reacquireScales, templates: tmpl, points: p,
                                       maxSteps: config.reacquireSearchSteps, minStride: 2)
        guard score >= config.reacquireAppearanceScore, box.visibleFraction(width: width, height: height) >= config.reacquireMinVisibleFraction else {
            return .lost(box: box, appearance: score)
        }
        return .search(box: box, appearance: score)
    }

    // MARK: - Judging

    private func referenceShape(_ o: ObjectState) -> [UInt8] {
        let n = config.shapeSide * config.shapeSide
        return MaskOps.majority(([o.anchorShape] + o.shapes).map { MaskOps.unpack($0, count: n) })
    }

    /// The accepted candidate and its observed box (clipped sides continued from the
    /// prompt box), or nil when no candidate is trustworthy.
    private func judge(_ o: ObjectState, _ cands: [(mask: [UInt8], iou: Float)], box: TrackBox, searching: Bool,
                       width: Int, height: Int) -> ((mask: [UInt8], iou: Float), TrackBox)? {
        let side = config.shapeSide
        let shape = referenceShape(o)
        let reference = MaskOps.render(shape, side: side, box: box, width: width, height: height)
        let refArea = Float(MaskOps.area(reference))
        guard refArea > 0 else { return nil }
        var best: (value: Float, index: Int, box: TrackBox)?
        for (k, c) in cands.enumerated() {
            guard let mb = MaskOps.box(c.mask, width: width, height: height) else { continue }
            let ratio = Float(MaskOps.area(c.mask)) / refArea
            guard ratio <= config.maxAreaRatio, ratio >= 1 / config.maxAreaRatio else { continue }
            // Re-acquisition after a wide search is held to a stricter consistency.
            let value = MaskOps.iou(c.mask, reference)
            guard value >= (searching ? config.reacquireMinConsistency : config.minConsistency) else { continue }
            if best == nil || value > best!.value { best = (value, k, mb) }
        }
        guard let best else { return nil }
        return (cands[best.index], continued(best.box, from: box, width: width, height: height))
    }

    /// A mask cut by the frame edge has a box cut there too; where the prompt box went past
    /// that edge, keep the prompt box's side so the object keeps its size out of view.
    private func continued(_ mb: TrackBox, from prompt: TrackBox, width: Int, height: Int) -> TrackBox {
        var b = mb
        if mb.x0 <= 0, prompt.x0 < 0 { b.x0 = prompt.x0 }
        if mb.y0 <= 0, prompt.y0 < 0 { b.y0 = prompt.y0 }
        if mb.x1 >= Float(width), prompt.x1 > Float(width) { b.x1 = prompt.x1 }
        if mb.y1 >= Float(height), prompt.y1 > Float(height) { b.y1 = prompt.y1 }
        return b
    }

    /// The prompt box for a matched (mask) box: the anchor's outsets applied.
    func outset(_ b: TrackBox, _ o: [Float]) -> TrackBox {
        TrackBox(x0: b.x0 - o[0] * b.width, y0: b.y0 - o[1] * b.height, x1: b.x1 + o[2] * b.width, y1: b.y1 + o[3] * b.height)
    }

    private func touchesEdge(_ b: TrackBox, width: Int, height: Int) -> Bool {
        b.x0 <= 0 || b.y0 <= 0 || b.x1 >= Float(width) || b.y1 >= Float(height)
    }

    // MARK: - Updating

    private func anchored(_ o: ObjectState, mask: [UInt8], fallbackBox: TrackBox?, frameIndex: UInt64, grid: FeatureGrid,
                          width: Int, height: Int) -> ObjectState {
        var o = o
        let side = config.shapeSide
        let mb = MaskOps.box(mask, width: width, height: height)
        guard let box = mb ?? fallbackBox else {
            // Points only and an empty mask: nothing to anchor on; keep what there was.
            o.isLost = true
            if o.history.isEmpty {  // a brand-new object with no memory at all: a 1-pixel placeholder, lost
                let p = TrackBox(x0: 0, y0: 0, x1: 1, y1: 1)
                o.history = [Observation(frameIndex: frameIndex, box: p, area: 0)]
                o.anchorShape = MaskOps.pack([UInt8](repeating: 1, count: side * side))
                let t = Quantized.encode(grid.template(p, points: config.appearancePoints))
                o.anchorAppearance = t; o.recentAppearance = t
            }
            return o
        }
        let shape = mb != nil ? MaskOps.shape(mask, width: width, height: height, box: box, side: side) : [UInt8](repeating: 1, count: side * side)
        let t = Quantized.encode(grid.template(box, points: config.appearancePoints))
        o.history = [Observation(frameIndex: frameIndex, box: box, area: UInt32(MaskOps.area(mask)))]
        o.anchorShape = MaskOps.pack(shape); o.shapes = []
        o.anchorAppearance = t; o.recentAppearance = t
        o.promptOutsets = [0, 0, 0, 0]
        if let mb, let user = fallbackBox, mb.width > 0, mb.height > 0 {
            let r = ObjectState.outsetRange
            func c(_ v: Float) -> Float { min(max(v, r.lowerBound), r.upperBound) }
            o.promptOutsets = [c((mb.x0 - user.x0) / mb.width), c((mb.y0 - user.y0) / mb.height),
                               c((user.x1 - mb.x1) / mb.width), c((user.y1 - mb.y1) / mb.height)]
        }
        o.isLost = mb == nil
        o.lastGoodFrame = frameIndex
        return o
    }

    private func accepted(_ o: ObjectState, mask: [UInt8], observed: TrackBox, frameIndex: UInt64, grid: FeatureGrid,
                          width: Int, height: Int, reset: Bool) -> ObjectState {
        var o = o
        let obs = Observation(frameIndex: frameIndex, box: observed, area: UInt32(MaskOps.area(mask)))
        // After re-acquisition the old motion no longer applies: start the line afresh.
        o.history = reset ? [obs] : Array((o.history + [obs]).suffix(config.motionHistory))
        if !touchesEdge(observed, width: width, height: height) {
            let shape = MaskOps.shape(mask, width: width, height: height, box: observed, side: config.shapeSide)
            o.shapes = Array((o.shapes + [MaskOps.pack(shape)]).suffix(config.shapeMemory))
            let c = grid.channels
            let recent = Quantized.blend(Quantized.decode(o.recentAppearance, channels: c), grid.template(observed, points: config.appearancePoints),
                                         rate: config.appearanceUpdateRate, channels: c)
            o.recentAppearance = Quantized.encode(recent)
        }
        o.isLost = false
        o.lastGoodFrame = frameIndex
        return o
    }

    // MARK: - Validation

    private func validate(state: StreamState, frameIndex: UInt64, width: Int, height: Int,
                          add: [UInt32: TrackerPrompt], correct: [UInt32: TrackerPrompt]) throws {
        if state.width != 0, (state.width, state.height) != (width, height) {
            throw TrackerError.frameSizeChanged(expected: (state.width, state.height), actual: (width, height))
        }
        if let last = state.lastFrameIndex, frameIndex <= last { throw TrackerError.frameOutOfOrder(last: last, got: frameIndex) }
        let known = Set(state.objectIDs)
        for id in add.keys.sorted() where known.contains(id) || correct[id] != nil { throw TrackerError.objectExists(id) }
        for id in correct.keys.sorted() where !known.contains(id) { throw TrackerError.unknownObject(id) }
        guard known.count + add.count <= config.maxObjects else { throw TrackerError.tooManyObjects(limit: config.maxObjects) }
        if !state.objects.isEmpty, state.shapeSide != config.shapeSide || state.appearancePoints != config.appearancePoints {
            throw TrackerError.stateLayout(stateShapeSide: state.shapeSide, stateAppearancePoints: state.appearancePoints)
        }
        let (fw, fh) = (Float(width), Float(height))
        for (id, p) in (add.merging(correct) { a, _ in a }).sorted(by: { $0.key < $1.key }) {
            guard !p.points.isEmpty || p.box != nil else { throw TrackerError.emptyPrompt(objectID: id) }
            func check(_ what: String, _ v: Float, _ limit: Float) throws {
                guard v.isFinite, v >= 0, v <= limit else { throw TrackerError.promptOutsideFrame(objectID: id, what: what, value: v, limit: limit) }
            }
            for (k, pt) in p.points.enumerated() {
                try check("point[\(k)].x", pt.x, fw); try check("point[\(k)].y", pt.y, fh)
                guard pt.label == 0 || pt.label == 1 else { throw TrackerError.invalidLabel(objectID: id, label: pt.label) }
            }
            if let b = p.box {
                try check("box.x0", b.x0, fw); try check("box.y0", b.y0, fh); try check("box.x1", b.x1, fw); try check("box.y1", b.y1, fh)
                guard b.x0 < b.x1, b.y0 < b.y1 else { throw TrackerError.emptyBox(objectID: id, x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1) }
            }
        }
    }
}
