import Foundation
import Imaging
import Pipeline
import XCTest

final class InputSetTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("segflow-inputs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        let png = try PNG.encode(GrayImage(width: 2, height: 2, pixels: [0, 255, 255, 0]))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/b.png"))
        // A PNG named .jpg: content decides.
        try Data(png).write(to: URL(fileURLWithPath: dir + "/a.jpg"))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/a.webp"))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/sub/deep.png"))
        try Data("GIF89a......".utf8).write(to: URL(fileURLWithPath: dir + "/anim.gif"))
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        try Data(png).write(to: URL(fileURLWithPath: dir + "/.hidden.png"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testDirectoryListsImagesByContentAndSkipsTheRestWithAReason() throws {
        let set = try InputSet.resolve([dir])
        XCTAssertTrue(set.isBatch)
        // Sorted, not recursive, hidden files ignored; stems shared by a.jpg / a.webp keep the whole name.
        XCTAssertEqual(set.items.map { ($0.path as NSString).lastPathComponent }, ["a.jpg", "a.webp", "b.png"])
        XCTAssertEqual(set.items.map(\.stem), ["a.jpg", "a.webp", "b"])
        XCTAssertEqual(set.items.map(\.format), [.png, .png, .png])
        XCTAssertEqual(set.skipped.map { ($0.path as NSString).lastPathComponent }, ["anim.gif", "notes.txt"])
        XCTAssertTrue(set.skipped[0].reason.contains("GIF"), set.skipped[0].reason)
        XCTAssertTrue(set.skipNotes[1].contains("notes.txt"), set.skipNotes[1])
    }

    func testGlobAndExplicitFiles() throws {
        let glob = try InputSet.resolve([dir + "/*.png"])
        XCTAssertTrue(glob.isBatch)
        XCTAssertEqual(glob.items.map(\.stem), ["b"])
        let one = try InputSet.resolve([dir + "/b.png"])
        XCTAssertFalse(one.isBatch)
        XCTAssertEqual(one.items.map(\.stem), ["b"])
        // The same file twice counts once; same names from two places get distinct stems.
        let two = try InputSet.resolve([dir + "/b.png", dir + "/b.png", dir + "/sub"])
        XCTAssertEqual(two.items.map(\.stem), ["b", "deep"])
        XCTAssertTrue(InputSet.namesSeveral([dir]))
        XCTAssertTrue(InputSet.namesSeveral([dir + "/*.png"]))
        XCTAssertFalse(InputSet.namesSeveral([dir + "/b.png"]))
    }

    func testErrorsNameTheFileAndWhatWasSeen() {
        XCTAssertThrowsError(try InputSet.resolve([dir + "/anim.gif"])) {
            XCTAssertTrue("\($0)".contains("anim.gif") && "\($0)".contains("GIF"), "\($0)")
        }
        XCTAssertThrowsError(try InputSet.resolve([dir + "/missing.png"])) { XCTAssertTrue("\($0)".contains("missing.png"), "\($0)") }
        XCTAssertThrowsError(try InputSet.resolve([dir + "/*.tiff"])) { XCTAssertTrue("\($0)".contains("no file matches"), "\($0)") }
        XCTAssertThrowsError(try InputSet.resolve([dir + "/*.txt"])) { XCTAssertTrue("\($0)".contains("no PNG, JPEG or WebP image"), "\($0)") }
        XCTAssertThrowsError(try InputSet.resolve([]))
    }

    func testImageFileChecksTheHeaderBeforeDecoding() throws {
        let f = try ImageFile.read(dir + "/a.jpg")
        XCTAssertEqual([f.header.width, f.header.height], [2, 2])
        XCTAssertEqual(f.header.format, .png)
        XCTAssertEqual(try f.decode().pixels.count, 12)
        XCTAssertThrowsError(try ImageFile.read(dir + "/b.png", maxPixels: 3)) { XCTAssertTrue("\($0)".contains("exceeds"), "\($0)") }
    }
}
