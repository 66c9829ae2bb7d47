"""Golden files for the CLIP tokenizer and text-encoder parity tests (Tests/CLIPTests/Fixtures),
and the generated HTML entity table Shared/CLIP/HTMLEntities.swift.

Run by hand in a venv with torch, transformers (5.x), safetensors and open_clip_torch
(`pip install open_clip_torch`: only its code and the BPE vocabulary are used; no weights
exist offline). Deterministic: rerunning reproduces the same files.

    python Tests/Reference/make_clip_fixtures.py

Writes:
  tokenizer_cases.json     a varied corpus and, per text, the ids from
                             open_clip   open_clip.tokenizer.SimpleTokenizer (clean='lower'), as installed
                                         (its basic_clean runs ftfy.fix_text first)
                             open_clip_no_ftfy  the same with ftfy.fix_text replaced by the identity —
                                         the cleaning Segflow implements (no ftfy port)
                             transformers  transformers.CLIPTokenizer built from the same vocabulary
                                         (vocab/merges derived below; no hub access), unpadded
                           All three are sequences [sot] + encode(text) + [eot] truncated to 77.
  clip_text_proj.safetensors + clip_text_proj_golden.safetensors
      a tiny random transformers CLIPTextModelWithProjection (vocab 1000, hidden 32, 2 layers,
      4 heads, intermediate 37, projection 16, quick_gelu, legacy eos_token_id=2 i.e. argmax
      pooling) with every parameter randomised; last_hidden_state, pooler_output, text_embeds
  clip_model.safetensors + clip_model_golden.safetensors
      a tiny random transformers CLIPModel (text: gelu, eos_token_id=500 so pooling takes the
      first eos position; a tiny vision tower whose tensors the text loader must skip);
      last_hidden_state, pooler_output and get_text_features
  clip_e2e.safetensors + clip_e2e_golden.safetensors
      a tiny CLIPTextModelWithProjection over the full 49408-token vocabulary (hidden 8, stored
      as float16 to keep the file small; the reference runs on the same f16-rounded weights in
      float32), fed open_clip's ids for a few prompts: text_embeds
  official_text_state_dicts.json  names and shapes of transformers' CLIPTextModelWithProjection
      for the openai/clip-vit-base-patch32 (= patch16) and clip-vit-large-patch14 text towers
      (built on the meta device: no weights), to check Segflow's presets bind the same tensors
  model_cases.json         the input ids of each model golden, the configs, and the e2e prompts
"""
import html.entities
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection
from transformers import CLIPTokenizer as HFCLIPTokenizer

import open_clip.tokenizer as oct
from open_clip.tokenizer import SimpleTokenizer

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "CLIPTests" / "Fixtures"
ENTITIES_SWIFT = HERE.parent.parent / "Shared" / "CLIP" / "HTMLEntities.swift"
CONTEXT = 77

CORPUS = [
    "a photo of a cat",
    "A Photo Of A CAT!!!",
    "",
    "   ",
    "hello, world... (really?) [yes]; {no} -- ok:/\\ @#$%^&*~`|+=_",
    "only punctuation ?!?! ... ---",
    "2024 was 3.14 times 1,000,000 better than the 42nd 007",
    "½ ² ⅓ Ⅻ ٣ ໒ numbers",
    "Café crème brûlée à la française, naïve résumé, Ærøskøbing",
    "Cafe\u0301 cre\u0300me (decomposed accents)",
    "I ❤️ 🍕 and 👩\u200d👩\u200d👧\u200d👦 🇺🇸 ✌🏽 🙂🙂🙂",
    "猫の写真 고양이 사진 一只猫 ｶﾀｶﾅ",
    "مرحبا שלום नमस्ते สวัสดี Привет мир",
    "It's John's car; they're here, we've gone, I'm ok, you'll see, he'd go, don't",
    "IT'S JOHN'S CAR, THEY'RE HERE",
    "it’s curly ‘quoted’ “text”",
    "''s 's 'sup 'tis o'clock rock'n'roll",
    "it'ſ a long s",
    "ypogegrammeni \u03b1\u0345 !\u0345? \u0345",
    "fish &amp; chips &lt;b&gt; &quot;q&quot; &#39;s &#x1F600; &copy 2024 &notit; &nbsp;x",
    "double &amp;lt;tag&amp;gt; &amp;amp; &#0; &#x80; &#x9F; &#xD800; &#1114112; &#99999999999; &bogus; &",
    "&AMP; &Amp; &ampx &lt3 &#X41;&#65 &#x;",
    "  lots   of\t\tspaces\n\nand\r\nnewlines \u00a0nbsp\u3000ideographic\u2003em  ",
    "sep\x1fby\x1cinfo\x85next\u2028line\u200bzero width\ufeffbom",
    "<start_of_text> hi <end_of_text>",
    "<|startoftext|> hi <|endoftext|>",
    "ΟΔΟΣ ΣΟΦΟΣ Σ ΑΣ. ὈΔΥΣΣΕΎΣ",
    "İstanbul KELVIN \u212a STRASSE Straße ǅ ﬁsh ＡＢＣ１２３",
    "https://example.com/a_b?c=d&e=f user@mail.org #hashtag @mention",
    "snake_case camelCase kebab-case PascalCase x86_64 e=mc^2",
    "tab\tcontrol\x07bell\x00nul",
    "a very long caption about promptable image segmentation " * 12,
    "word " * 80,
    "x" * 300,
]


def derived_vocab(tok):
    """vocab.json / merges.txt as transformers' CLIPTokenizer expects them, from open_clip's
    tables: the same ids, with HF's spelling of the two special tokens."""
    vocab = {}
    for token, idx in tok.encoder.items():
        if token == "<start_of_text>":
            token = "<|startoftext|>"
        elif token == "<end_of_text>":
            token = "<|endoftext|>"
        vocab[token] = idx
    merges = [tuple(m) for m, _ in sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])]
    return vocab, merges


def tokenizer_cases():
    tok = SimpleTokenizer()
    vocab, merges = derived_vocab(tok)
    hf = HFCLIPTokenizer(vocab=vocab, merges=merges)

    def oc_ids(text):
        row = tok([text], context_length=CONTEXT)[0].tolist()
        # drop the zero padding (0 is also the id of "!", so cut by length, not by value)
        n = min(len(tok.encode(text)) + 2, CONTEXT)
        assert all(v == 0 for v in row[n:])
        return row[:n]

    real_fix = oct.ftfy.fix_text
    cases = []
    for text in CORPUS:
        with_ftfy = oc_ids(text)
        oct.ftfy.fix_text = lambda t: t
        try:
            without = oc_ids(text)
        finally:
            oct.ftfy.fix_text = real_fix
        hf_ids = hf(text, truncation=True, max_length=CONTEXT)["input_ids"]
        cases.append({
            "text": text,
            "open_clip": with_ftfy,
            "open_clip_no_ftfy": without,
            "transformers": hf_ids,
            "encode_no_ftfy": _encode_no_ftfy(tok, text),
        })
    n_ftfy = sum(c["open_clip"] != c["open_clip_no_ftfy"] for c in cases)
    n_hf = sum(c["transformers"] != c["open_clip_no_ftfy"] for c in cases)
    print(f"tokenizer: {len(cases)} texts; ftfy changes {n_ftfy}; transformers differs on {n_hf}")
    for c in cases:
        if c["transformers"] != c["open_clip_no_ftfy"] or c["open_clip"] != c["open_clip_no_ftfy"]:
            print("  differs:", repr(c["text"][:60]),
                  "ftfy" if c["open_clip"] != c["open_clip_no_ftfy"] else "",
                  "transformers" if c["transformers"] != c["open_clip_no_ftfy"] else "")
    head = json.dumps({"context_length": CONTEXT, "sot": tok.sot_token_id, "eot": tok.eot_token_id})[:-1]
    rows = ",\n  ".join(json.dumps(c, ensure_ascii=True) for c in cases)  # one text per line
    (FIX / "tokenizer_cases.json").write_text(f'{head}, "cases": [\n  {rows}\n]}}\n')


def _encode_no_ftfy(tok, text):
    real_fix = oct.ftfy.fix_text
    oct.ftfy.fix_text = lambda t: t
    try:
        return tok.encode(text)
    finally:
        oct.ftfy.fix_text = real_fix


def randomise(model, seed):
    """Every parameter random (not the default init, which zeroes biases and sets LN to 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def padded(rows, width=CONTEXT):
    return [r + [0] * (width - len(r)) for r in rows]


def text_proj_model():
    cfg = CLIPTextConfig(vocab_size=1000, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=CONTEXT, projection_dim=16,
                         hidden_act="quick_gelu", layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
                         attn_implementation="eager")
    torch.manual_seed(1)
    model = CLIPTextModelWithProjection(cfg).eval()
    randomise(model, 1)
    g = torch.Generator().manual_seed(11)
    # sot=998, eot=999 (the largest id, as 49407 is for the real vocab); lengths 2, 9, 77 (full)
    rows = []
    for n in (0, 7, CONTEXT - 2):
        body = torch.randint(1, 998, (n,), generator=g).tolist()
        rows.append([998] + body + [999])
    ids = torch.tensor(padded(rows))
    with torch.no_grad():
        out = model(input_ids=ids)
    pooled = model.text_model(input_ids=ids).pooler_output
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, FIX / "clip_text_proj.safetensors")
    save_file({"last_hidden_state": out.last_hidden_state.contiguous(), "pooler_output": pooled.detach().contiguous(),
               "text_embeds": out.text_embeds.contiguous()}, FIX / "clip_text_proj_golden.safetensors")
    return {"input_ids": ids.tolist(), "config": cfg.to_diff_dict()}


def clip_model():
    text = dict(vocab_size=600, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=3,
                max_position_embeddings=16, hidden_act="gelu", layer_norm_eps=1e-5, bos_token_id=499,
                eos_token_id=500)
    vision = dict(hidden_size=16, intermediate_size=20, num_hidden_layers=1, num_attention_heads=2,
                  image_size=8, patch_size=4, num_channels=3)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=12, attn_implementation="eager")
    torch.manual_seed(2)
    model = CLIPModel(cfg).eval()
    randomise(model, 2)
    # ids > 500 appear before the eos (500), so argmax pooling would pick a different position:
    # this golden proves the "first eos_token_id" rule. Row 2 has a second 500 in the padding.
    rows = [[499, 550, 599, 500], [499, 3, 4, 599, 7, 500], [499, 598, 500, 0, 0, 500]]
    ids = torch.tensor(padded(rows, 16))
    with torch.no_grad():
        t = model.text_model(input_ids=ids)
        feats = model.get_text_features(input_ids=ids)
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, FIX / "clip_model.safetensors")
    save_file({"last_hidden_state": t.last_hidden_state.contiguous(), "pooler_output": t.pooler_output.contiguous(),
               "text_features": feats.contiguous()}, FIX / "clip_model_golden.safetensors")
    return {"input_ids": ids.tolist(), "config": cfg.to_diff_dict()}


E2E_PROMPTS = ["a photo of a cat", "the left kidney", "Two dogs playing in the snow, 2 balls!", "tumour"]


def e2e_model():
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=CONTEXT, projection_dim=8,
                         hidden_act="quick_gelu", bos_token_id=0, eos_token_id=2,
                         attn_implementation="eager")
    torch.manual_seed(3)
    model = CLIPTextModelWithProjection(cfg).eval()
    randomise(model, 3)
    with torch.no_grad():  # what is stored is f16; the reference computes on exactly those values
        for p in model.parameters():
            p.copy_(p.half().float())
    tok = SimpleTokenizer()
    ids = tok(E2E_PROMPTS, context_length=CONTEXT)
    with torch.no_grad():
        out = model(input_ids=ids)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, FIX / "clip_e2e.safetensors")
    save_file({"text_embeds": out.text_embeds.contiguous()}, FIX / "clip_e2e_golden.safetensors")
    return {"prompts": E2E_PROMPTS, "input_ids": ids.tolist(), "config": cfg.to_diff_dict()}


def official_state_dicts():
    towers = {
        "openai/clip-vit-base-patch32": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                                             num_attention_heads=8, projection_dim=512),
        "openai/clip-vit-large-patch14": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                              num_attention_heads=12, projection_dim=768),
    }
    out = {}
    for name, kw in towers.items():
        with torch.device("meta"):
            model = CLIPTextModelWithProjection(CLIPTextConfig(**kw))
        out[name] = {k: list(v.shape) for k, v in model.state_dict().items()}
    (FIX / "official_text_state_dicts.json").write_text(json.dumps(out, indent=1) + "\n")


def entities_swift():
    """Python's html.unescape tables (html/__init__.py, html/entities.py) as Swift source."""
    import html as h
    lines = []
    for name, value in sorted(html.entities.html5.items()):
        assert "\t" not in name and "\n" not in name
        lines.append(name + "\t" + " ".join(f"{ord(c):X}" for c in value))
    invalid_refs = " ".join(f"{k:X}:{ord(v):X}" if v else f"{k:X}:" for k, v in sorted(h._invalid_charrefs.items()))
    assert all(len(v) <= 1 for v in h._invalid_charrefs.values())
    invalid_cps = " ".join(f"{c:X}" for c in sorted(h._invalid_codepoints))
    body = "\n".join(lines)
    src = f'''// GENERATED by Tests/Reference/make_clip_fixtures.py from Python {sys.version_info.major}.{sys.version_info.minor}'s
// html.entities.html5 and html._invalid_charrefs / html._invalid_codepoints — do not edit.
// The tables `html.unescape` uses (the WHATWG HTML named character references).

enum HTMLEntityTables {{
    /// "name<TAB>hex code points" per line; names include the trailing ";" where the
    /// standard requires it ({len(lines)} entries).
    static let named = """
{body}
"""

    /// Numeric references replaced by another character (`code:replacement`, empty = "").
    static let invalidCharrefs = "{invalid_refs}"

    /// Numeric references that decode to nothing.
    static let invalidCodepoints = "{invalid_cps}"
}}
'''
    ENTITIES_SWIFT.write_text(src)


def main():
    FIX.mkdir(parents=True, exist_ok=True)
    entities_swift()
    official_state_dicts()
    tokenizer_cases()
    cases = {"text_proj": text_proj_model(), "clip_model": clip_model(), "e2e": e2e_model()}
    (FIX / "model_cases.json").write_text(json.dumps(cases, default=str) + "\n")


if __name__ == "__main__":
    main()
