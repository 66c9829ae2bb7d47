import Tensor
import XCTest

final class ByteCodingTests: XCTestCase {
    func testFloatRoundTrips() {
        let v: [Float] = [0, -0, 1, -2.5, 65504, 1e-8, .infinity, 3.14159]
        XCTAssertEqual(LittleEndian.floats(f32: LittleEndian.f32Bytes(v), count: v.count), v)
        let halves = LittleEndian.floats(f16: LittleEndian.f16Bytes(v), count: v.count)
        XCTAssertEqual(halves, v.map { Float(Float16($0)) })
        XCTAssertEqual(LittleEndian.f16Bytes([1]), [0x00, 0x3c], "binary16 1.0 is 0x3C00, little-endian")
    }

    func testReaderThrowsTheCallersErrorWhenShort() {
        struct Short: Error, Equatable { var needed: Int, available: Int }
        var out: [UInt8] = []
        LittleEndian.append(UInt16(0x1234), to: &out)
        LittleEndian.append(UInt32(0xdeadbeef), to: &out)
        var r = LittleEndian.Reader(out) { Short(needed: $0, available: $1) }
        XCTAssertEqual(try r.u16(), 0x1234)
        XCTAssertEqual(try r.u32(), 0xdeadbeef)
        XCTAssertThrowsError(try r.u8()) { XCTAssertEqual($0 as? Short, Short(needed: 7, available: 6)) }
    }
}
