import XCTest
final class ServiceKitSmokeTests: XCTestCase { func testNothingYet() {} }
