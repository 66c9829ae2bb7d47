import XCTest
final class TensorSmokeTests: XCTestCase { func testNothingYet() {} }
