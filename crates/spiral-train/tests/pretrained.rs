//! RL on pretrained Hugging Face checkpoints: the tiny Qwen3 fixture trained on JSONL math
//! problems through its chat template, and a PEFT adapter loaded onto it trained further.

use std::path::{Path, PathBuf};

use spiral_train::{Outcome, RunConfig, RunControl, run};

/// A fixture checkpoint or adapter of `spiral-model`'s tests.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spiral-model/tests/fixtures").join(name)
}

/// The repository's config for math on a pretrained Qwen3, which these runs shrink.
fn gpu_math_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/gpu-qwen3-0.6b-math.toml");
    std::fs::read_to_string(path).unwrap()
}

/// Writes a train file of two questions and a test file of one into `dir`, each row made by
/// `row(question, answer)`; returns their paths.
fn write_math_data(dir: &Path, row: impl Fn(&str, &str) -> serde_json::Value) -> [PathBuf; 2] {
    let write = |name: &str, rows: &[(&str, &str)]| {
        let path = dir.join(name);
        let text: String = rows.iter().map(|(q, a)| format!("{}\n", row(q, a))).collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    [
        write("train.jsonl", &[("What is 2+3?", "5"), ("What is 7*6?", "42")]),
        write("test.jsonl", &[("What is 9-4?", "5")]),
    ]
}

/// Overrides that shrink the math config to one RL step of two problems from `base`, trained
/// on `train` and evaluated on the one problem of `test`.
fn tiny_math_run(base: &Path, [train, test]: &[PathBuf; 2]) -> Vec<String> {
    let quoted = |p: &Path| format!("{:?}", p.display().to_string());
    let sizes = [
        "task.train_problems=2",
        "task.test_problems=1",
        "algorithm.n1=4",
        "algorithm.n=2",
        "algorithm.k=2",
        "algorithm.n2=2",
        "rollout.max_new_tokens=6",
        "train.steps=1",
        "train.problems_per_step=2",
        "eval.problems=1",
        "eval.n=2",
    ];
    [
        format!("model.checkpoint={}", quoted(base)),
        format!("task.train_file={}", quoted(train)),
        format!("task.test_file={}", quoted(test)),
    ]
    .into_iter()
    .chain(sizes.iter().map(|s| s.to_string()))
    .collect()
}

#[test]
fn a_pretrained_checkpoint_trains_on_a_jsonl_math_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_math_data(dir.path(), |q, a| serde_json::json!({"problem": q, "answer": a}));
    let text = gpu_math_config();
    let overrides = tiny_math_run(&fixture("qwen3"), &data);
    let config = RunConfig::from_toml(&text, "gpu config", &overrides).unwrap();
    let out = dir.path().join("run");
    let Outcome::Finished(last) = run(&config, &out, &RunControl::default()).unwrap() else {
        panic!("nobody asked the run to stop");
    };
    assert_eq!((last.problems, last.n), (1, 2));
    // Resuming reads only the tokenizer from model.checkpoint and the weights from the run.
    let resumed = run(&config, &out, &RunControl { resume: true, ..Default::default() }).unwrap();
    let Outcome::Finished(again) = resumed else { panic!("the run was already finished") };
    assert_eq!(again.agg_at_1, last.agg_at_1, "the finished model evaluates the same");
    // The trained checkpoint is a Hugging Face folder with the pretrained tokenizer.
    let trained = spiral_model::Checkpoint::<burn::backend::Flex>::load(
        out.join("checkpoints/step-1"),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(trained.model.config().hidden_size, 64);
    assert!(trained.tokenizer.chat_template().is_some(), "the chat template is kept");
    let prompt = std::fs::read_to_string(out.join("samples/eval-step-0.jsonl")).unwrap();
    assert!(prompt.contains("What is 9-4?") && prompt.contains("boxed"), "{prompt}");

    let err = RunConfig::from_toml(
        &text,
        "gpu config",
        &["model.checkpoint=x".into(), "warm_start.steps=3".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("warm_start.steps"), "{err}");
}

/// A PEFT adapter loaded onto a pretrained base (`model.adapter`) goes on training: the first
/// checkpoint's adapter starts from the loaded one (not a fresh one) and names the base folder;
/// the problems come from verl-style records (a chat conversation, the answer nested) read
/// through dotted field paths; an adapter whose shape `[lora]` does not describe is refused,
/// naming both.
#[test]
fn a_peft_adapter_on_a_pretrained_base_goes_on_training() {
    let (base, adapter) = (fixture("qwen3"), fixture("qwen3_lora"));
    let dir = tempfile::tempdir().unwrap();
    let data = write_math_data(dir.path(), |q, a| {
        serde_json::json!({
            "data_source": "tiny",
            "prompt": [{"role": "user", "content": q}],
            "reward_model": {"style": "rule", "ground_truth": a},
        })
    });
    let text = gpu_math_config();
    let overrides = |extra: &[&str]| -> Vec<String> {
        let adapter = format!("model.adapter={:?}", adapter.display().to_string());
        let fields = [
            "task.fields.problem=\"prompt\"",
            "task.fields.answer=\"reward_model.ground_truth\"",
            "lora.enabled=true",
            "lora.rank=4",
            "lora.alpha=8",
        ];
        let mut all = tiny_math_run(&base, &data);
        all.push(adapter);
        all.extend(fields.iter().chain(extra).map(|s| s.to_string()));
        all
    };
    let config = RunConfig::from_toml(&text, "gpu config", &overrides(&[])).unwrap();
    let out = dir.path().join("run");
    run(&config, &out, &RunControl::default()).unwrap();
    let step = out.join("checkpoints/step-1");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step.join("adapter_config.json")).unwrap())
            .unwrap();
    let named = PathBuf::from(saved["base_model_name_or_path"].as_str().unwrap());
    assert_eq!(named.canonicalize().unwrap(), base.canonicalize().unwrap());
    // The trained adapter moved from the loaded one by one small step: it is near the fixture's,
    // where a fresh adapter (B = 0) would be far from it.
    let base_model =
        spiral_model::Checkpoint::<burn::backend::Flex>::load(&base, &Default::default())
            .unwrap()
            .model;
    let tensors = |dir: &Path| {
        let adapted = base_model.clone().load_adapter(dir).unwrap();
        let mut out: Vec<(String, Vec<f32>)> = adapted
            .adapter_tensors()
            .into_iter()
            .filter(|(name, _, _)| name.contains("lora_B"))
            .map(|(name, _, values)| (name, values))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    let (loaded, trained) = (tensors(&adapter), tensors(&step));
    assert_eq!(loaded.len(), trained.len());
    let (mut diff, mut size) = (0f64, 0f64);
    for ((_, a), (_, b)) in loaded.iter().zip(&trained) {
        diff += a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum::<f64>();
        size += a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
    }
    assert!(size > 0.0 && diff < 0.25 * size, "trained B is {diff} from the loaded, |B| {size}");
    let samples = std::fs::read_to_string(out.join("samples/eval-step-0.jsonl")).unwrap();
    assert!(samples.contains("What is 9-4?"), "{samples}");

    // A [lora] that does not describe the adapter: both shapes and the settings to use.
    let config = RunConfig::from_toml(&text, "gpu config", &overrides(&["lora.rank=8"])).unwrap();
    let err = run(&config, &dir.path().join("wrong"), &RunControl::default()).unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("rank 4") && err.contains("lora.rank=4"), "{err}");
    // An adapter without LoRA training, or without a base, is refused when the config is read.
    let err = RunConfig::from_toml(&text, "gpu config", &overrides(&["lora.enabled=false"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("lora.enabled = true"), "{err}");
}
