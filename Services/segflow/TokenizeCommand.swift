import ArgumentParser
import CLIP

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print CLIP BPE token ids of each TEXT on one line (a debugging aid, like llama.cpp's tokenize).",
        discussion: "Ids include the start (49406) and end (49407) tokens; --context-length pads with 0 and truncates as CLIP does.")

    @Argument(help: "Texts to tokenize.") var texts: [String]
    @Option(help: "Pad/truncate to this length (77 for CLIP); 0 prints the unpadded ids.") var contextLength = 0

    func run() throws {
        let tokenizer = try CLIPTokenizer()
        for text in texts {
            let t = tokenizer.tokenized(text, contextLength: contextLength > 0 ? contextLength : 1 << 20)
            let ids = contextLength > 0 ? t.ids : Array(t.ids.prefix(t.length))
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
