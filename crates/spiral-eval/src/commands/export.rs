//! `spiral-eval export`: writes a model (with a PEFT adapter merged in, when given) as a plain
//! Hugging Face folder, in the on-disk dtype and shard size asked for, as
//! `merge_and_unload()` followed by `save_pretrained(dir, max_shard_size=...)` does with
//! PEFT and transformers.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use spiral_model::{DeviceSpec, Precision, SaveDtype, SaveOptions};

use super::{ADAPTER_HELP, MODEL_HELP, load_checkpoint};
use crate::device::{ModelCommand, run_model_command};

/// Arguments of `spiral-eval export`.
#[derive(clap::Args)]
#[command(after_help = "\
Training checkpoints keep float32 weights (the AdamW master copy) so that a run resumes exactly;
export writes the folder to publish or to load elsewhere. Adapters are merged into their
projections (W + s A B), so the folder loads with AutoModelForCausalLM alone. A model larger than
--max-shard-size is written as model-0000i-of-0000n.safetensors shards with
model.safetensors.index.json, as transformers writes it.

Example: spiral-eval export --model Qwen/Qwen3-0.6B --adapter runs/lora/checkpoints/step-300 \\
         --out qwen3-merged --save-dtype bfloat16")]
pub struct ExportArgs {
    #[arg(long, help = MODEL_HELP)]
    pub model: PathBuf,
    #[arg(long, help = ADAPTER_HELP)]
    pub adapter: Option<PathBuf>,
    /// The folder to write (created if needed; a model already there is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// On-disk dtype of the weights: `float32`, `bfloat16` or `float16` (rounded to nearest even).
    #[arg(long, default_value = "float32")]
    pub save_dtype: SaveDtype,
    /// Largest weight shard, as transformers' `max_shard_size`: bytes, or a number with KB, MB,
    /// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
    #[arg(long, default_value = "5GB", value_parser = parse_size)]
    pub max_shard_size: u64,
}

/// Runs the command.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    run_model_command(args)
}

impl ModelCommand for ExportArgs {
    fn device(&self) -> DeviceSpec {
        DeviceSpec::Cpu
    }

    fn run_on<B: Backend>(self, device: &B::Device) -> anyhow::Result<()> {
        // Float32 on the CPU: the merge `W + s A B` is computed at full precision and rounded
        // once, on the way to disk.
        let ckpt =
            load_checkpoint::<B>(&self.model, self.adapter.as_deref(), Precision::Float32, device)?;
        let options = SaveOptions { dtype: self.save_dtype, max_shard_bytes: self.max_shard_size };
        let merged = spiral_model::Checkpoint { model: ckpt.model.merge_lora(), ..ckpt };
        merged.save_with(&self.out, &options)?;
        eprintln!(
            "wrote {} ({}, shards of at most {} bytes)",
            self.out.display(),
            self.save_dtype,
            self.max_shard_size
        );
        Ok(())
    }
}

/// `5GB`, `500MB`, `2GiB`, `1000` (bytes) as a byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a size such as 5GB or 500MB"))?;
    let scale: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {text:?}: use KB, MB, GB")),
    };
    let bytes = number * scale as f64;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(format!("{text:?}: a shard size must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_transformers_reads_them() {
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5kb"), Ok(1500));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0GB").is_err());
        assert!(parse_size("5TB").unwrap_err().contains("unit"));
        assert!(parse_size("GB").is_err());
    }
}
