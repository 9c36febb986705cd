//! LoRA against PEFT (`fixtures/make_fixtures.py` wrote adapters with PEFT and the adapted
//! models' log-probs): loading, the unmerged and merged forward paths, saving in PEFT's format,
//! fresh adapters (identity at start, frozen base), and refusal of malformed adapter folders.
//! With `SPIRAL_RESAVE_DIR` set, the adapters re-saved by Rust are left there for
//! `make_fixtures.py --verify-adapter` (run by `cargo xtask fixtures`).

mod common;

use std::path::Path;

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use common::{ADAPTERS, B, expected, fixture, to_vec};
use spiral_model::lora::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};
use spiral_model::{CausalLm, Checkpoint, LoraConfig, Projection, generate_greedy};

const LOGPROB_TOLERANCE: f64 = 1e-4;

fn adapted(name: &str) -> CausalLm<B> {
    let base = expected(name).base.expect("adapter fixtures name their base");
    let ckpt = Checkpoint::<B>::load(fixture(&base), &Default::default()).unwrap();
    ckpt.model.load_adapter(&fixture(name)).unwrap()
}

/// Worst difference between the model's log-probs and PEFT's on every case of `name`.
fn worst_difference(model: &CausalLm<B>, name: &str) -> f64 {
    let mut worst: f64 = 0.0;
    for case in expected(name).logprob_cases {
        let scores = model.token_logprobs(&[case.input_ids], &[1], false).unwrap();
        let got = &to_vec(scores.logprobs)[0];
        assert_eq!(got.len(), case.full_logprobs.len());
        for (g, e) in got.iter().zip(&case.full_logprobs) {
            worst = worst.max((*g as f64 - e).abs());
        }
    }
    worst
}

#[test]
fn peft_adapters_give_peft_log_probs_unmerged_and_merged() {
    for name in ADAPTERS {
        let model = adapted(name);
        let unmerged = worst_difference(&model, name);
        let merged_model = model.merge_lora();
        assert!(merged_model.lora().is_none());
        let merged = worst_difference(&merged_model, name);
        println!("{name}: worst |logprob - PEFT| unmerged {unmerged:.3e}, merged {merged:.3e}");
        assert!(unmerged < LOGPROB_TOLERANCE, "{name}: unmerged differs by {unmerged:e}");
        assert!(merged < LOGPROB_TOLERANCE, "{name}: merged differs by {merged:e}");
        let g = expected(name).greedy;
        let new = generate_greedy(&merged_model, &g.prompt_ids, g.new_ids.len(), &[]).unwrap();
        assert_eq!(new, g.new_ids, "{name}: greedy tokens of the merged model differ");
    }
}

#[test]
fn an_adapter_folder_loads_as_a_checkpoint_over_its_base() {
    // `base_model_name_or_path` is "../qwen3" in the fixture, as PEFT would resolve it.
    let ckpt = Checkpoint::<B>::load(fixture("qwen3_lora"), &Default::default()).unwrap();
    assert!(ckpt.model.lora().is_some());
    assert!(worst_difference(&ckpt.model, "qwen3_lora") < LOGPROB_TOLERANCE);

    let dir = tempfile::tempdir().unwrap();
    for f in [ADAPTER_CONFIG, ADAPTER_WEIGHTS] {
        std::fs::copy(fixture("qwen3_lora").join(f), dir.path().join(f)).unwrap();
    }
    let e = Checkpoint::<B>::load(dir.path(), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("base_model_name_or_path") && e.contains("../qwen3"), "{e}");
}

#[test]
fn peft_configs_are_read_with_their_scaling_and_targets() {
    let qwen3 = LoraConfig::from_peft_file(&fixture("qwen3_lora").join(ADAPTER_CONFIG)).unwrap();
    assert_eq!((qwen3.rank, qwen3.alpha, qwen3.use_rslora), (4, 8.0, false));
    assert_eq!(qwen3.targets.len(), 7);
    assert_eq!(qwen3.scaling(), 2.0);
    let qwen2 = LoraConfig::from_peft_file(&fixture("qwen2_lora").join(ADAPTER_CONFIG)).unwrap();
    assert_eq!(qwen2.targets, [Projection::Q, Projection::V, Projection::Up]);
    assert!(qwen2.use_rslora);
    assert!((qwen2.scaling() - 4.0 / 2f64.sqrt()).abs() < 1e-12);
}

/// The tensors of a safetensors file: name -> (shape, float32 values).
fn read_tensors(path: &Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

#[test]
fn adapters_save_as_peft_wrote_them() {
    let resave_root = std::env::var_os("SPIRAL_RESAVE_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    for name in ADAPTERS {
        let model = adapted(name);
        let out = resave_root.clone().unwrap_or_else(|| tmp.path().to_path_buf()).join(name);
        model.save_adapter(&out, "base").unwrap();
        std::fs::copy(fixture(name).join("expected.json"), out.join("expected.json")).unwrap();
        // Same keys, shapes and values as PEFT's own file.
        assert_eq!(
            read_tensors(&out.join(ADAPTER_WEIGHTS)),
            read_tensors(&fixture(name).join(ADAPTER_WEIGHTS)),
            "{name}"
        );
        let saved = LoraConfig::from_peft_file(&out.join(ADAPTER_CONFIG)).unwrap();
        assert_eq!(&saved, model.lora().unwrap());
        let base = expected(name).base.unwrap();
        let again = Checkpoint::<B>::load(fixture(&base), &Default::default())
            .unwrap()
            .model
            .load_adapter(&out)
            .unwrap();
        assert!(worst_difference(&again, name) < LOGPROB_TOLERANCE);
    }
}

#[test]
fn a_merged_model_saves_as_a_plain_checkpoint() {
    let ckpt = Checkpoint::<B>::load(fixture("qwen3"), &Default::default()).unwrap();
    let model = ckpt.model.load_adapter(&fixture("qwen3_lora")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // save_pretrained merges the adapters on the way out.
    spiral_model::save_pretrained(&model, &ckpt.tokenizer, dir.path()).unwrap();
    let plain = Checkpoint::<B>::load(dir.path(), &Default::default()).unwrap();
    assert!(plain.model.lora().is_none());
    assert!(worst_difference(&plain.model, "qwen3_lora") < LOGPROB_TOLERANCE);
}

type Train = Autodiff<B>;

/// Ids of the parameters that received a gradient, and of all parameters.
fn parameters_with_gradients(
    model: &CausalLm<Train>,
    grads: &GradientsParams,
) -> (Vec<ParamId>, usize) {
    struct Visit<'a>(&'a GradientsParams, Vec<ParamId>, usize);
    impl ModuleVisitor<Train> for Visit<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Train, D>>) {
            self.2 += 1;
            if self.0.get::<B, D>(param.id).is_some() {
                self.1.push(param.id);
            }
        }
    }
    let mut visit = Visit(grads, Vec::new(), 0);
    model.visit(&mut visit);
    (visit.1, visit.2)
}

#[test]
fn fresh_adapters_start_at_the_base_and_only_they_get_gradients() {
    let device = Default::default();
    let base = Checkpoint::<Train>::load(fixture("qwen3"), &device).unwrap().model;
    let ids: Vec<u32> = (0..24).map(|i| (i * 37 + 5) % 400).collect();
    let before =
        base.valid().token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs;
    let config = LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.1,
        use_rslora: false,
        targets: vec![Projection::Q, Projection::V, Projection::Down],
    };
    let model = base.with_lora(&config, 3).unwrap();
    let c = model.config();
    let (h, kv, i) = (c.hidden_size, c.num_kv_heads * c.head_dim, c.intermediate_size);
    let q = c.num_heads * c.head_dim;
    let per_layer = 8 * ((h + q) + (h + kv) + (i + h));
    assert_eq!(model.lora_parameters(), c.num_layers * per_layer);

    // B = 0: the adapted model computes exactly what the base did (no dropout at inference).
    let valid = model.valid();
    let after = valid.token_logprobs(std::slice::from_ref(&ids), &[1], false).unwrap().logprobs;
    assert_eq!(to_vec(before), to_vec(after), "fresh adapters must not change the model");

    let loss = model.token_logprobs(&[ids], &[1], false).unwrap().logprobs.sum().neg();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let (with_grad, total) = parameters_with_gradients(&model, &grads);
    // A and B of 3 projections in each layer, nothing else.
    assert_eq!(with_grad.len(), 2 * 3 * c.num_layers, "of {total} parameters");
}

#[test]
fn malformed_adapter_folders_are_refused_by_file_and_key() {
    let base = || Checkpoint::<B>::load(fixture("qwen3"), &Default::default()).unwrap().model;
    let copy = || {
        let dir = tempfile::tempdir().unwrap();
        for f in [ADAPTER_CONFIG, ADAPTER_WEIGHTS] {
            std::fs::copy(fixture("qwen3_lora").join(f), dir.path().join(f)).unwrap();
        }
        dir
    };
    let edit_config = |dir: &Path, key: &str, value: serde_json::Value| {
        let path = dir.join(ADAPTER_CONFIG);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json[key] = value;
        std::fs::write(&path, json.to_string()).unwrap();
    };
    let error = |dir: &Path| base().load_adapter(dir).unwrap_err().to_string();

    let dir = copy();
    edit_config(dir.path(), "use_dora", serde_json::json!(true));
    let e = error(dir.path());
    assert!(e.contains(ADAPTER_CONFIG) && e.contains("use_dora"), "{e}");

    let dir = copy();
    edit_config(dir.path(), "target_modules", serde_json::json!(["q_proj", "lm_head"]));
    let e = error(dir.path());
    assert!(e.contains("target_modules") && e.contains("lm_head"), "{e}");

    // A rank that disagrees with the tensors: the first A tensor's shape is named.
    let dir = copy();
    edit_config(dir.path(), "r", serde_json::json!(8));
    let e = error(dir.path());
    assert!(e.contains("lora_A.weight") && e.contains("[4, 64]"), "{e}");

    // Fewer targets than the file holds: the unused tensors are named.
    let dir = copy();
    edit_config(dir.path(), "target_modules", serde_json::json!(["q_proj"]));
    let e = error(dir.path());
    assert!(e.contains("unexpected") && e.contains("k_proj.lora_A.weight"), "{e}");

    let dir = copy();
    std::fs::write(dir.path().join(ADAPTER_WEIGHTS), b"not safetensors").unwrap();
    let e = error(dir.path());
    assert!(e.contains(ADAPTER_WEIGHTS), "{e}");

    let dir = copy();
    std::fs::write(dir.path().join(ADAPTER_CONFIG), "{\"peft_type\": ").unwrap();
    let e = error(dir.path());
    assert!(e.contains(ADAPTER_CONFIG) && e.contains("JSON"), "{e}");
}

/// Adapters made here (fresh, then B drawn at random as training would move it) on the qwen3
/// fixture, with this crate's log-probs and greedy tokens as `expected.json`: reloading gives the
/// same numbers, and with `SPIRAL_RESAVE_DIR` PEFT is asked to reproduce them
/// (`make_fixtures.py --verify-adapter`), which checks the file format in PEFT's direction.
#[test]
fn adapters_made_here_reload_to_the_same_numbers() {
    use rand::{Rng, SeedableRng};
    let device = Default::default();
    let base = Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap();
    let config = LoraConfig {
        rank: 3,
        alpha: 5.0,
        dropout: 0.05,
        use_rslora: true,
        targets: vec![Projection::K, Projection::O, Projection::Gate, Projection::Down],
    };
    let mut model = base.model.with_lora(&config, 11).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for layer in &mut model.layers {
        for (_, linear) in layer.projections_mut() {
            if let Some(lora) = &mut linear.lora {
                let dims = lora.b.val().dims();
                let values: Vec<f32> =
                    (0..dims[0] * dims[1]).map(|_| rng.random_range(-0.3..0.3)).collect();
                let b = Tensor::from_data(burn::tensor::TensorData::new(values, dims), &device);
                lora.b = Param::from_tensor(b);
            }
        }
    }
    let mut exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("qwen3_lora").join("expected.json")).unwrap(),
    )
    .unwrap();
    exp["base"] = "qwen3".into();
    exp["family"] = "qwen3 + LoRA made by spiral-model".into();
    for case in exp["logprob_cases"].as_array_mut().unwrap() {
        let ids: Vec<u32> = serde_json::from_value(case["input_ids"].clone()).unwrap();
        let prompt_len = case["prompt_len"].as_u64().unwrap() as usize;
        let full = to_vec(model.token_logprobs(&[ids], &[1], false).unwrap().logprobs).remove(0);
        case["logprobs"] = serde_json::json!(full[prompt_len - 1..]);
        case["full_logprobs"] = serde_json::json!(full);
    }
    let prompt: Vec<u32> = serde_json::from_value(exp["greedy"]["prompt_ids"].clone()).unwrap();
    let greedy = generate_greedy(&model, &prompt, 24, &[]).unwrap();
    exp["greedy"]["new_ids"] = serde_json::json!(greedy);

    let tmp = tempfile::tempdir().unwrap();
    let root = std::env::var_os("SPIRAL_RESAVE_DIR").map_or(tmp.path().to_path_buf(), Into::into);
    let out = root.join("made_here_lora");
    model.save_adapter(&out, "../qwen3").unwrap();
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&exp).unwrap()).unwrap();

    let again =
        Checkpoint::<B>::load(fixture("qwen3"), &device).unwrap().model.load_adapter(&out).unwrap();
    assert_eq!(again.lora(), Some(&config));
    let a = model.token_logprobs(std::slice::from_ref(&prompt), &[1], false).unwrap().logprobs;
    let b = again.token_logprobs(&[prompt], &[1], false).unwrap().logprobs;
    assert_eq!(to_vec(a), to_vec(b));
}
