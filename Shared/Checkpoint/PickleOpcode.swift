/// Pickle opcodes, named as in CPython's pickletools so error messages match
/// `python -m pickletools` output. Only a subset is executed (see `Unpickler`); the
/// rest exist so a rejected opcode can be named.
/// ref: cpython Lib/pickletools.py (opcodes table), Lib/pickle.py (opcode constants)
enum PickleOpcode: UInt8, CustomStringConvertible {
    // protocol 0/1
    case mark = 0x28            // (
    case stop = 0x2e            // .
    case pop = 0x30             // 0
    case popMark = 0x31         // 1
    case dup = 0x32             // 2
    case float = 0x46           // F
    case int = 0x49             // I
    case binint = 0x4a          // J
    case binint1 = 0x4b         // K
    case long = 0x4c            // L
    case binint2 = 0x4d         // M
    case none = 0x4e            // N
    case persid = 0x50          // P
    case binpersid = 0x51       // Q
    case reduce = 0x52          // R
    case string = 0x53          // S
    case binstring = 0x54       // T
    case shortBinstring = 0x55  // U
    case unicode = 0x56         // V
    case binunicode = 0x58      // X
    case append = 0x61          // a
    case build = 0x62           // b
    case global = 0x63          // c
    case dict = 0x64            // d
    case emptyDict = 0x7d       // }
    case appends = 0x65         // e
    case get = 0x67             // g
    case binget = 0x68          // h
    case inst = 0x69            // i
    case longBinget = 0x6a      // j
    case list = 0x6c            // l
    case emptyList = 0x5d       // ]
    case obj = 0x6f             // o
    case put = 0x70             // p
    case binput = 0x71          // q
    case longBinput = 0x72      // r
    case setitem = 0x73         // s
    case tuple = 0x74           // t
    case emptyTuple = 0x29      // )
    case setitems = 0x75        // u
    case binfloat = 0x47        // G
    // protocol 2
    case proto = 0x80
    case newobj = 0x81
    case ext1 = 0x82
    case ext2 = 0x83
    case ext4 = 0x84
    case tuple1 = 0x85
    case tuple2 = 0x86
    case tuple3 = 0x87
    case newtrue = 0x88
    case newfalse = 0x89
    case long1 = 0x8a
    case long4 = 0x8b
    // protocol 3
    case binbytes = 0x42        // B
    case shortBinbytes = 0x43   // C
    // protocol 4
    case shortBinunicode = 0x8c
    case binunicode8 = 0x8d
    case binbytes8 = 0x8e
    case emptySet = 0x8f
    case additems = 0x90
    case frozenset = 0x91
    case newobjEx = 0x92
    case stackGlobal = 0x93
    case memoize = 0x94
    case frame = 0x95
    // protocol 5
    case bytearray8 = 0x96
    case nextBuffer = 0x97
    case readonlyBuffer = 0x98

    var description: String {
        switch self {
        case .mark: return "MARK"
        case .stop: return "STOP"
        case .pop: return "POP"
        case .popMark: return "POP_MARK"
        case .dup: return "DUP"
        case .float: return "FLOAT"
        case .int: return "INT"
        case .binint: return "BININT"
        case .binint1: return "BININT1"
        case .long: return "LONG"
        case .binint2: return "BININT2"
        case .none: return "NONE"
        case .persid: return "PERSID"
        case .binpersid: return "BINPERSID"
        case .reduce: return "REDUCE"
        case .string: return "STRING"
        case .binstring: return "BINSTRING"
        case .shortBinstring: return "SHORT_BINSTRING"
        case .unicode: return "UNICODE"
        case .binunicode: return "BINUNICODE"
        case .append: return "APPEND"
        case .build: return "BUILD"
        case .global: return "GLOBAL"
        case .dict: return "DICT"
        case .emptyDict: return "EMPTY_DICT"
        case .appends: return "APPENDS"
        case .get: return "GET"
        case .binget: return "BINGET"
        case .inst: return "INST"
        case .longBinget: return "LONG_BINGET"
        case .list: return "LIST"
        case .emptyList: return "EMPTY_LIST"
        case .obj: return "OBJ"
        case .put: return "PUT"
        case .binput: return "BINPUT"
        case .longBinput: return "LONG_BINPUT"
        case .setitem: return "SETITEM"
        case .tuple: return "TUPLE"
        case .emptyTuple: return "EMPTY_TUPLE"
        case .setitems: return "SETITEMS"
        case .binfloat: return "BINFLOAT"
        case .proto: return "PROTO"
        case .newobj: return "NEWOBJ"
        case .ext1: return "EXT1"
        case .ext2: return "EXT2"
        case .ext4: return "EXT4"
        case .tuple1: return "TUPLE1"
        case .tuple2: return "TUPLE2"
        case .tuple3: return "TUPLE3"
        case .newtrue: return "NEWTRUE"
        case .newfalse: return "NEWFALSE"
        case .long1: return "LONG1"
        case .long4: return "LONG4"
        case .binbytes: return "BINBYTES"
        case .shortBinbytes: return "SHORT_BINBYTES"
        case .shortBinunicode: return "SHORT_BINUNICODE"
        case .binunicode8: return "BINUNICODE8"
        case .binbytes8: return "BINBYTES8"
        case .emptySet: return "EMPTY_SET"
        case .additems: return "ADDITEMS"
        case .frozenset: return "FROZENSET"
        case .newobjEx: return "NEWOBJ_EX"
        case .stackGlobal: return "STACK_GLOBAL"
        case .memoize: return "MEMOIZE"
        case .frame: return "FRAME"
        case .bytearray8: return "BYTEARRAY8"
        case .nextBuffer: return "NEXT_BUFFER"
        case .readonlyBuffer: return "READONLY_BUFFER"
        }
    }
}
