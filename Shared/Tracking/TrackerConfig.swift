/// The tracker's thresholds. Every value is a measured choice on the evaluation in
/// Tests/TrackingTests (real photographs, synthetic camera motion); the README's Video
/// section gives the rule they implement. The same config must be used for a stream
/// across restarts: the state does not carry it, and results depend on it.
public struct TrackerConfig: Sendable, Equatable {
    /// Boxes (and frame indices) of the last good observations the motion model fits.
    /// A robust line (Theil–Sen) through them predicts where the object is next.
    public var motionHistory: Int = 6
    /// Shape templates (masks cropped to their box, `shapeSide`²) kept besides the anchor;
    /// the reference shape is the per-pixel majority of the anchor and these.
    public var shapeMemory: Int = 4
    /// Side of a shape template (bits).
    public var shapeSide: Int = 32
    /// Appearance template: `appearancePoints`² embedding vectors sampled on a grid over
    /// the object's box (int8, unit length), one from the anchor frame and one running
    /// average of recent good frames.
    public var appearancePoints: Int = 5
    /// Weight of a new good frame in the running appearance template.
    public var appearanceUpdateRate: Float = 0.5
    /// Search radius around the predicted box, as a fraction of the box's longer side…
    public var searchRadiusFraction: Float = 0.6
    /// …and at least this many embedding cells (a small object can still move).
    public var minSearchRadiusCells: Float = 4
    /// The motion-predicted box is kept when its appearance score is within this of the
    /// search's best (a still object stays still; the search grid is coarse on large objects).
    public var appearanceTieMargin: Float = 0.01
    /// Scales (relative to the predicted box) tried by the appearance search.
    public var searchScales: [Float] = [0.84, 0.92, 1.0, 1.09, 1.19]
    /// Below this mean cosine similarity between the best-matching box and the
    /// object's templates the object is not visible (lost): no decode is trusted.
    public var minAppearanceScore: Float = 0.6
    /// A lost object is searched over the whole frame; it is re-acquired only when the
    /// best match is at least this similar (stricter than tracking, since the search is wide)…
    public var reacquireAppearanceScore: Float = 0.75
    public var reacquireMinVisibleFraction: Float = 0.7
    /// …and its mask has at least this IoU with the reference shape drawn into the matched box.
    public var reacquireMinConsistency: Float = 0.6
    /// Coarse steps each way of the tracking search (the step grows with the radius, so
    /// the cost per object is bounded; a fine pass refines to a quarter step).
    public var searchSteps: Int = 8
    /// Coarse steps each way of the whole-frame search for a lost object.
    public var reacquireSearchSteps: Int = 16
    /// Scales relative to the last good box tried when searching for a lost object.
    public var reacquireScales: [Float] = [0.7, 0.84, 1.0, 1.19, 1.4]
    /// A decoded mask is accepted when its IoU with the reference shape drawn into the
    /// matched box is at least this…
    public var minConsistency: Float = 0.5
    /// …and its area is within this factor of the reference's (either way).
    public var maxAreaRatio: Float = 2.0
    /// An object whose predicted box lies less than this fraction inside the frame has
    /// left the view: status lost, no decode.
    public var minVisibleFraction: Float = 0.3
    /// Upper bound on objects per stream (memory per stream is bounded).
    public var maxObjects: Int = 64

    public init() {}
}
