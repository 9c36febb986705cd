//! From-scratch pieces for synthetic tasks: a character-level `tokenizer.json` built in code,
//! so the default training run needs no downloaded files. One token per character keeps digits
//! separate, as Qwen's tokenizer does, which small models need to learn arithmetic.

use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{ModelError, Result};

/// Builds a character-level tokenizer: ids `0..specials.len()` are the special tokens (matched
/// as whole strings before anything else), then one id per distinct character of `alphabet`.
/// Text with a character outside the alphabet encodes that character as `unk` (the first
/// special token), so callers should include every character their task produces.
pub fn char_tokenizer(alphabet: &str, specials: &[&str]) -> Result<Tokenizer> {
    if specials.is_empty() {
        return Err(ModelError::Input(
            "char_tokenizer needs at least one special token (used as unk)".into(),
        ));
    }
    let mut vocab = Vocab::new();
    for s in specials {
        let id = vocab.len() as u32;
        vocab.entry((*s).to_string()).or_insert(id);
    }
    let mut chars: Vec<char> = alphabet.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    for c in chars {
        let id = vocab.len() as u32;
        vocab.entry(c.to_string()).or_insert(id);
    }
    // A BPE model without merges is exactly a character-level model that HF readers understand.
    let model = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .unk_token(specials[0].to_string())
        .build()
        .map_err(|e| ModelError::Input(format!("char_tokenizer: {e}")))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_decoder(Some(Fuse::new()));
    let added: Vec<AddedToken> =
        specials.iter().map(|s| AddedToken::from(s.to_string(), true)).collect();
    tokenizer.add_special_tokens(&added);
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_keeps_specials_whole() {
        let t = char_tokenizer("0123456789+-*/()= \nabc", &["<unk>", "<|im_end|>"]).unwrap();
        let text = "12+3=15<|im_end|>";
        let ids = t.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(ids.len(), 8, "7 characters plus one special token: {ids:?}");
        assert_eq!(*ids.last().unwrap(), 1);
        assert_eq!(t.decode(&ids, false).unwrap(), text);
        assert_eq!(t.decode(&ids, true).unwrap(), "12+3=15");
    }

    #[test]
    fn survives_a_save_and_reload_as_tokenizer_json() {
        let t = char_tokenizer("ab ", &["<unk>"]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        t.save(&path, false).unwrap();
        let again = Tokenizer::from_file(&path).unwrap();
        let ids = again.encode("ab ba", false).unwrap().get_ids().to_vec();
        assert_eq!(again.decode(&ids, false).unwrap(), "ab ba");
        assert_eq!(again.encode("z", false).unwrap().get_ids(), &[0], "unknown chars map to unk");
    }
}
