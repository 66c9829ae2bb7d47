import XCTest
final class CheckpointSmokeTests: XCTestCase { func testNothingYet() {} }
