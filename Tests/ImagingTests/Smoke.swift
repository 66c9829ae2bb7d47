import XCTest
final class ImagingSmokeTests: XCTestCase { func testNothingYet() {} }
