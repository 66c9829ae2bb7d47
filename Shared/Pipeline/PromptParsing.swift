import SAM

/// Parses the command-line prompt syntax shared by `segflow segment` in-process and over Kafka.
public enum PromptParsing {
    /// "x,y" (foreground) or "x,y,label" with label 1 (foreground) or 0 (background).
    public static func point(_ s: String) throws(PipelineError) -> SamPrompt.Point {
        let parts = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2 || parts.count == 3,
              let x = Float(parts[0]), let y = Float(parts[1]), x.isFinite, y.isFinite else {
            throw .badArgument("point '\(s)' must be x,y or x,y,label with finite numbers")
        }
        var label = 1
        if parts.count == 3 {
            guard let l = Int(parts[2]), l == 0 || l == 1 else {
                throw .badArgument("point '\(s)': label must be 1 (foreground) or 0 (background)")
            }
            label = l
        }
        return SamPrompt.Point(x: x, y: y, label: label)
    }

    /// "x0,y0,x1,y1" in pixels of the original image.
    public static func box(_ s: String) throws(PipelineError) -> (x0: Float, y0: Float, x1: Float, y1: Float) {
        let v = s.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 4, let x0 = v[0], let y0 = v[1], let x1 = v[2], let y1 = v[3],
              [x0, y0, x1, y1].allSatisfy(\.isFinite) else {
            throw .badArgument("box '\(s)' must be x0,y0,x1,y1 with finite numbers")
        }
        guard x0 <= x1, y0 <= y1 else { throw .badArgument("box '\(s)' must have x0 <= x1 and y0 <= y1") }
        return (x0, y0, x1, y1)
    }

    /// One prompt per box, each carrying all the points; with no box, one prompt of points.
    public static func prompts(points: [String], boxes: [String], multimask: Bool) throws(PipelineError) -> [SamPrompt] {
        var pts: [SamPrompt.Point] = []
        for p in points { pts.append(try point(p)) }
        var bxs: [(x0: Float, y0: Float, x1: Float, y1: Float)] = []
        for b in boxes { bxs.append(try box(b)) }
        if bxs.isEmpty {
            guard !pts.isEmpty else { throw .badArgument("give at least one --point or --box") }
            return [SamPrompt(points: pts, multimask: multimask)]
        }
        return bxs.map { SamPrompt(points: pts, box: $0, multimask: multimask) }
    }
}
