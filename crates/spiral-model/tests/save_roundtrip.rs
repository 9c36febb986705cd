//! Saving writes a Hugging Face folder that loads back to the same numbers: single-file or
//! sharded with transformers' index, float32 or bfloat16 on disk. With `SPIRAL_RESAVE_DIR` set,
//! the fixtures are re-saved there with their `expected.json` (and `llama` once more as float32
//! shards, `qwen3_tied` as bfloat16 shards) so that `cargo xtask fixtures` can check them with
//! transformers (`make_fixtures.py --verify`).

mod common;

use common::{B, FAMILIES, fixture, to_vec};
use std::path::Path;

use spiral_model::save::{SAFETENSORS_INDEX, SAFETENSORS_SINGLE};
use spiral_model::{
    CausalLm, Checkpoint, ModelConfig, SaveDtype, SaveOptions, TextTokenizer, char_tokenizer,
};

#[test]
fn every_family_round_trips_through_save() {
    let device = Default::default();
    let resave_root = std::env::var_os("SPIRAL_RESAVE_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    for name in FAMILIES {
        let ckpt = Checkpoint::<B>::load(fixture(name), &device).unwrap();
        let out = resave_root.clone().unwrap_or_else(|| tmp.path().to_path_buf()).join(name);
        ckpt.save(&out).unwrap();
        std::fs::copy(fixture(name).join("expected.json"), out.join("expected.json")).unwrap();
        let again = Checkpoint::<B>::load(&out, &device).unwrap();
        assert_eq!(again.model.config(), ckpt.model.config());
        assert_eq!(again.tokenizer.eos_token_ids(), ckpt.tokenizer.eos_token_ids());
        let seq: Vec<u32> = (0..20).map(|i| (i * 13 + 1) % 400).collect();
        let a = to_vec(
            ckpt.model.token_logprobs(std::slice::from_ref(&seq), &[1], false).unwrap().logprobs,
        );
        let b = to_vec(again.model.token_logprobs(&[seq], &[1], false).unwrap().logprobs);
        assert_eq!(a, b, "{name}: float32 save must be lossless");
        let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
        let extra = Default::default();
        assert_eq!(
            again.tokenizer.apply_chat_template(&messages, true, &extra).unwrap(),
            ckpt.tokenizer.apply_chat_template(&messages, true, &extra).unwrap()
        );
    }
}

#[test]
fn from_scratch_model_and_tokenizer_save_and_reload() {
    let device = Default::default();
    let tokenizer = char_tokenizer("0123456789+-*= \n", &["<unk>", "<|im_end|>"]).unwrap();
    let eos = tokenizer.token_to_id("<|im_end|>").unwrap();
    let tokenizer = TextTokenizer::new(tokenizer, vec![eos], None);
    let config = ModelConfig::small(tokenizer.vocab_size(), 32, 2, 4);
    let model = CausalLm::<B>::random(config.clone(), 7, 0.02, &device).unwrap();
    let same_seed = CausalLm::<B>::random(config, 7, 0.02, &device).unwrap();
    let ids = tokenizer.encode("12+34=46", false).unwrap();
    let a = to_vec(model.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs);
    let b =
        to_vec(same_seed.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs);
    assert_eq!(a, b, "seeded initialisation is deterministic");

    let dir = tempfile::tempdir().unwrap();
    spiral_model::save_pretrained(&model, &tokenizer, dir.path()).unwrap();
    let again = Checkpoint::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(again.tokenizer.eos_token_ids(), &[eos]);
    let c = to_vec(again.model.token_logprobs(&[ids], &[1], false).unwrap().logprobs);
    assert_eq!(a, c);
}

fn logprobs(ckpt: &Checkpoint<B>) -> Vec<Vec<f32>> {
    let seq: Vec<u32> = (0..20).map(|i| (i * 13 + 1) % 400).collect();
    to_vec(ckpt.model.token_logprobs(&[seq], &[1], false).unwrap().logprobs)
}

fn weight_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("safetensors"))
        .collect();
    names.sort();
    names
}

/// The dtype of every tensor in a safetensors file.
fn dtypes(path: &Path) -> Vec<safetensors::Dtype> {
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors.tensors().into_iter().map(|(_, view)| view.dtype()).collect()
}

#[test]
fn a_model_over_the_shard_limit_saves_sharded_with_transformers_index() {
    let device = Default::default();
    let ckpt = Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sharded");
    // The embedding alone is 512 x 64 x 4 = 131,072 bytes, over this limit: it gets its own shard.
    let options = SaveOptions { max_shard_bytes: 100_000, ..SaveOptions::default() };
    ckpt.save_with(&out, &options).unwrap();
    let files = weight_files(&out);
    let shards: Vec<&String> = files.iter().filter(|f| f.starts_with("model-")).collect();
    assert!(shards.len() > 2, "{files:?}");
    assert!(
        files.contains(&SAFETENSORS_INDEX.to_string())
            && !files.contains(&SAFETENSORS_SINGLE.into())
    );
    let count = shards.len();
    for (i, shard) in shards.iter().enumerate() {
        assert_eq!(**shard, format!("model-{:05}-of-{count:05}.safetensors", i + 1));
    }

    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(SAFETENSORS_INDEX)).unwrap())
            .unwrap();
    let tensors = spiral_model::hf_tensors(&ckpt.model);
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), tensors.len());
    let elements: usize = tensors.iter().map(|(_, _, v)| v.len()).sum();
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(4 * elements as u64));
    assert_eq!(index["metadata"]["total_parameters"].as_u64(), Some(elements as u64));
    assert_eq!(
        map["model.embed_tokens.weight"],
        "model-00001-of-".to_string() + &format!("{count:05}.safetensors")
    );
    for shard in &shards {
        let size = std::fs::metadata(out.join(shard)).unwrap().len();
        let tensors_in = map.values().filter(|f| f.as_str() == Some(shard.as_str())).count();
        // Only a shard holding one oversized tensor may pass the limit (plus its header).
        assert!(size < 100_000 + 4096 || tensors_in == 1, "{shard}: {size} bytes");
    }

    let again = Checkpoint::<B>::load(&out, &device).unwrap();
    assert_eq!(logprobs(&again), logprobs(&ckpt), "a sharded float32 save is lossless");

    // Saving the same folder unsharded replaces the shards and index; and back again.
    ckpt.save(&out).unwrap();
    assert_eq!(weight_files(&out), vec![SAFETENSORS_SINGLE.to_string()]);
    ckpt.save_with(&out, &options).unwrap();
    assert_eq!(weight_files(&out).len(), count + 1);
    assert_eq!(logprobs(&Checkpoint::<B>::load(&out, &device).unwrap()), logprobs(&ckpt));

    if let Some(root) = std::env::var_os("SPIRAL_RESAVE_DIR") {
        let llama = Checkpoint::<B>::load(fixture("llama"), &device).unwrap();
        let out = Path::new(&root).join("llama_sharded");
        llama.save_with(&out, &options).unwrap();
        std::fs::copy(fixture("llama").join("expected.json"), out.join("expected.json")).unwrap();
    }
}

#[test]
fn a_bfloat16_model_stays_bfloat16_on_disk() {
    let device = Default::default();
    // qwen3_tied is stored in bfloat16: its values survive a bf16 save exactly.
    let ckpt = Checkpoint::<B>::load(fixture("qwen3_tied"), &device).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for max_shard_bytes in [u64::MAX, 40_000] {
        let out = tmp.path().join(format!("bf16-{max_shard_bytes}"));
        let options = SaveOptions { dtype: SaveDtype::BFloat16, max_shard_bytes };
        ckpt.save_with(&out, &options).unwrap();
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["torch_dtype"], "bfloat16");
        let files = weight_files(&out);
        let mut bytes = 0;
        for file in files.iter().filter(|f| !f.ends_with(".json")) {
            let kinds = dtypes(&out.join(file));
            assert!(kinds.iter().all(|d| *d == safetensors::Dtype::BF16), "{file}: {kinds:?}");
            bytes += std::fs::metadata(out.join(file)).unwrap().len();
        }
        let elements: usize =
            spiral_model::hf_tensors(&ckpt.model).iter().map(|(_, _, v)| v.len()).sum();
        assert!(bytes < 2 * elements as u64 + 8192 * files.len() as u64, "{bytes} bytes");
        let again = Checkpoint::<B>::load(&out, &device).unwrap();
        assert_eq!(logprobs(&again), logprobs(&ckpt), "{files:?}");
    }
    if let Some(root) = std::env::var_os("SPIRAL_RESAVE_DIR") {
        let out = Path::new(&root).join("qwen3_tied_bf16_sharded");
        let options = SaveOptions { dtype: SaveDtype::BFloat16, max_shard_bytes: 40_000 };
        ckpt.save_with(&out, &options).unwrap();
        std::fs::copy(fixture("qwen3_tied").join("expected.json"), out.join("expected.json"))
            .unwrap();
    }
    // The default stays float32.
    let out = tmp.path().join("f32");
    ckpt.save(&out).unwrap();
    assert!(dtypes(&out.join(SAFETENSORS_SINGLE)).iter().all(|d| *d == safetensors::Dtype::F32));
}
