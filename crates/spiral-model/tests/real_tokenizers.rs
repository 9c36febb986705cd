//! The real Qwen3 and Qwen2.5-Instruct tokenizers and chat templates, read in place from
//! `$SPIRAL_TOKENIZERS_DIR` (see `common::tokenizers_dir`): encoding and `apply_chat_template`
//! output equal transformers' exactly. Skipped, saying so, where the tokenizers are absent.

mod common;

use common::real_tokenizer;
use spiral_model::TextTokenizer;

#[test]
fn real_chat_templates_match_transformers() {
    let path = common::fixture("real_chat_templates.json");
    let cases: Vec<common::ChatCase> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases {
        let name = case.tokenizer.clone().unwrap();
        let Some(dir) = real_tokenizer(&name) else {
            let dir = common::tokenizers_dir().join(&name);
            eprintln!("skipped {name}: {} is not present", dir.display());
            continue;
        };
        let tokenizer = TextTokenizer::from_dir(&dir, &[]).unwrap();
        let text = tokenizer
            .apply_chat_template(&case.messages, case.add_generation_prompt, &case.kwargs)
            .unwrap();
        assert_eq!(text, case.text, "{name}: {}", case.messages);
        assert_eq!(tokenizer.encode(&text, false).unwrap(), case.ids, "{name}: token ids differ");
        checked += 1;
    }
    println!("checked {checked} real chat templates");
}

#[test]
fn real_eos_ids() {
    let Some(dir) = real_tokenizer("qwen3") else { return };
    let config = spiral_model::ModelConfig::from_file(dir.join("config.json")).unwrap();
    let tokenizer = TextTokenizer::from_dir(&dir, &config.eos_token_ids).unwrap();
    let mut eos = tokenizer.eos_token_ids().to_vec();
    eos.sort_unstable();
    assert_eq!(eos, vec![151643, 151645]);
    assert_eq!(tokenizer.vocab_size(), 151669);
}
