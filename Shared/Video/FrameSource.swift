import Foundation
import Imaging
import Pipeline

/// One frame of a FrameSource.
public struct SourceFrame: Sendable {
    /// 0, 1, 2, … in order.
    public var index: Int
    /// Seconds (video files); nil for image sequences.
    public var pts: Double?
    public var image: RGBImage
    /// The image file's path, or for a video "video.mp4#12" (the frame index).
    public var name: String
    /// Output name for per-frame files: the image file's stem (InputSet's rule), or for a
    /// video the zero-padded index ("00012", DAVIS's frame names).
    public var stem: String
    /// The image file's bytes as read (sent as-is over Kafka); nil for video frames.
    public var fileBytes: [UInt8]?

    public init(index: Int, pts: Double?, image: RGBImage, name: String, stem: String, fileBytes: [UInt8]?) {
        self.index = index; self.pts = pts; self.image = image; self.name = name; self.stem = stem; self.fileBytes = fileBytes
    }
}

/// The frames a command line names, read one at a time:
/// - one video file (anything libavformat/libavcodec read: MP4, MKV, WebM, AVI, MOV, …),
/// - a directory of frame images (its PNG/JPEG/WebP files in natural order: frame2 before
///   frame10; other files are skipped with a note),
/// - a glob (`"frames/*.jpg"`, natural order) or an explicit list of image files (in the
///   order given; a file named twice is two frames).
///
/// Files are told apart by content, never by name: a single file argument that is not a
/// PNG, JPEG or WebP image is opened as a video. Image resolution is InputSet's (the same
/// rules as `segment`'s folders and globs). With `requireOneSize` (the default) all frames
/// must share the first frame's size; a frame of another size is an error naming it.
public final class FrameSource {
    public enum Kind: Sendable, Equatable {
        case video(VideoInfo)
        case images(InputSet)
    }

    public let kind: Kind
    /// A short description for logs: "video clip.mp4 (h264 640x360, 25 fps, 120 frames)".
    public let summary: String
    /// Frames in the source when known beforehand (images: always; video: when the container records it).
    public let count: Int?
    /// `count`, else for a video duration × frame rate (for progress lines; may be off by a few).
    public var estimatedCount: Int? {
        if let count { return count }
        guard case let .video(info) = kind, let d = info.duration, let r = info.frameRate, d > 0 else { return nil }
        return Int((d * r).rounded())
    }
    /// Frames per second of a video (nil for images or when the container has none).
    public let frameRate: Double?
    /// Notes for stderr, known once the source is open: files of a directory or glob skipped.
    public var notes: [String] {
        switch kind {
        case let .images(set): set.skipNotes
        case .video: []
        }
    }
    /// Notes for stderr that accumulate while decoding: corrupt video data skipped under
    /// `.skip` (at most VideoReader.maxWarnings lines, then a count).
    public var decodeWarnings: [String] {
        guard let reader, reader.skippedCount > 0 else { return [] }
        var lines = reader.warnings.map { "segflow: \($0)" }
        if reader.skippedCount > lines.count { lines.append("segflow: … \(reader.skippedCount - lines.count) more corrupt packet(s) skipped") }
        return lines
    }

    private var reader: VideoReader?
    private var position = 0
    private var firstSize: (width: Int, height: Int, name: String)?
    private let maxPixels: Int
    private let requireOneSize: Bool

    /// Resolves `arguments` (nothing is decoded yet except the video's header).
    public init(_ arguments: [String], videoOptions: VideoReader.Options = VideoReader.Options(), requireOneSize: Bool = true) throws {
        maxPixels = videoOptions.maxPixels
        self.requireOneSize = requireOneSize
        guard !arguments.isEmpty else { throw PipelineError.badArgument("give a video file, a directory of frames, a glob or image files") }
        let videos = arguments.filter(Self.isNonImageFile)
        if let video = videos.first {
            guard arguments.count == 1 else {
                throw PipelineError.badArgument("\(video) is not a PNG, JPEG or WebP image; a video must be the only input (got \(arguments.count) inputs)")
            }
            let reader = try VideoReader(path: video, options: videoOptions)
            self.reader = reader
            kind = .video(reader.info)
            count = reader.info.frameCount
            frameRate = reader.info.frameRate
            let i = reader.info
            summary = "video \(video) (\(i.codec) \(i.width)x\(i.height)"
                + (i.frameRate.map { String(format: ", %.4g fps", $0) } ?? "")
                + (i.frameCount.map { ", \($0) frames" } ?? (i.duration.map { String(format: ", %.1f s", $0) } ?? "")) + ")"
        } else {
            let set = try InputSet.resolve(arguments, order: .natural, keepDuplicates: true)
            guard set.items.count <= videoOptions.maxFrames else {
                throw PipelineError.badArgument("\(set.items.count) frames exceed the limit of \(videoOptions.maxFrames) (raise it with --max-frames)")
            }
            kind = .images(set)
            count = set.items.count
            frameRate = nil
            summary = "\(set.items.count) image frame(s)" + (set.items.first.map { " from \($0.path)" } ?? "")
        }
    }

    /// A regular file that exists and does not start like a PNG, JPEG or WebP.
    static func isNonImageFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
              let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let prefix = [UInt8]((try? handle.read(upToCount: 64)) ?? Data())
        return ImageFormat.detect(prefix) == nil
    }

    /// The next frame, or nil after the last. Errors name the file (and frame).
    public func next() throws -> SourceFrame? {
        let frame: SourceFrame
        switch kind {
        case .video:
            guard let reader, let f = try reader.next() else { return nil }
            frame = SourceFrame(index: f.index, pts: f.pts, image: f.image, name: "\(reader.path)#\(f.index)",
                                stem: String(format: "%05d", f.index), fileBytes: nil)
        case let .images(set):
            guard position < set.items.count else { return nil }
            let item = set.items[position]
            let input = try ImageInput.read(item.path, maxPixels: maxPixels)
            frame = SourceFrame(index: position, pts: nil, image: input.image, name: item.path, stem: item.stem, fileBytes: input.bytes)
        }
        position += 1
        if !requireOneSize {
        } else if let first = firstSize {
            guard frame.image.width == first.width, frame.image.height == first.height else {
                throw PipelineError.badArgument("frame \(frame.index) (\(frame.name)) is \(frame.image.width)x\(frame.image.height); "
                                                + "frame 0 (\(first.name)) is \(first.width)x\(first.height): all frames must share one size")
            }
        } else {
            firstSize = (frame.image.width, frame.image.height, frame.name)
        }
        return frame
    }

    /// Frames delivered so far.
    public var framesRead: Int { position }
}
