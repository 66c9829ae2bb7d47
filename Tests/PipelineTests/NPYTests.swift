import Foundation
import Pipeline
import Tensor
import XCTest

/// `--save-logits` writes .npy; numpy itself made the fixtures (Tests/Reference/make_npy_fixtures.py).
final class NPYTests: XCTestCase {
    func fixture(_ name: String) throws -> [UInt8] {
        let url = Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)!
        return [UInt8](try Data(contentsOf: url))
    }

    func testEncodeIsByteIdenticalToNumpySave() throws {
        for shape in [[3, 2, 2], [1, 4, 4]] {
            let n = shape.reduce(1, *)
            let t = Tensor(shape: shape, data: (0..<n).map { Float($0) * 0.5 - 1 })
            let name = "npy_\(shape.map(String.init).joined(separator: "x")).npy"
            XCTAssertEqual(NPY.encode(t), try fixture(name), name)
            XCTAssertEqual(try NPY.decode(try fixture(name)), t, name)
        }
    }

    func testMalformedFilesAreErrorsNamingTheProblem() throws {
        let good = try fixture("npy_3x2x2.npy")
        XCTAssertThrowsError(try NPY.decode(Array(good.dropLast(4)))) { XCTAssertTrue("\($0)".contains("needs 48 data bytes"), "\($0)") }
        XCTAssertThrowsError(try NPY.decode(Array("not numpy".utf8))) { XCTAssertTrue("\($0)".contains(".npy"), "\($0)") }
        var f8 = good
        let at = try XCTUnwrap((0..<(f8.count - 3)).first { Array(f8[$0..<($0 + 3)]) == Array("<f4".utf8) })
        f8[at + 2] = UInt8(ascii: "8")
        XCTAssertThrowsError(try NPY.decode(f8)) { XCTAssertTrue("\($0)".contains("float32"), "\($0)") }
    }
}
