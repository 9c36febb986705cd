//! Writing a model's weights as transformers' `save_pretrained` does: one `model.safetensors`,
//! or, above a size limit, shards `model-00001-of-0000N.safetensors` with a
//! `model.safetensors.index.json` (`metadata.total_size`, `weight_map`), in float32, bfloat16 or
//! float16. The split follows `huggingface_hub.split_torch_state_dict_into_shards`
//! (<https://huggingface.co/docs/huggingface_hub/package_reference/serialization>): tensors in
//! order, a new shard when the next tensor would pass the limit, a tensor larger than the limit
//! alone in its shard. The formats are <https://huggingface.co/docs/safetensors> and
//! transformers' "Sharded checkpoints" (<https://huggingface.co/docs/transformers/big_models>).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use burn::tensor::{DType, TensorData};
use safetensors::Dtype;

use crate::error::{ModelError, Result};
use crate::weights::write_atomically;

/// The index file of a sharded checkpoint.
pub const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
/// The single-file checkpoint.
pub const SAFETENSORS_SINGLE: &str = "model.safetensors";
/// transformers' default shard limit, `"5GB"` (decimal gigabytes, as it parses sizes).
pub const DEFAULT_MAX_SHARD_BYTES: u64 = 5_000_000_000;

/// The element type weights are stored in on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveDtype {
    /// 4 bytes per weight; lossless for every compute precision.
    #[default]
    Float32,
    /// 2 bytes per weight (round to nearest even); lossless for a bf16 model.
    BFloat16,
    /// 2 bytes per weight (round to nearest even).
    Float16,
}

impl SaveDtype {
    /// The name transformers uses (`torch_dtype` in `config.json`).
    pub fn name(self) -> &'static str {
        match self {
            SaveDtype::Float32 => "float32",
            SaveDtype::BFloat16 => "bfloat16",
            SaveDtype::Float16 => "float16",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            SaveDtype::Float32 => 4,
            SaveDtype::BFloat16 | SaveDtype::Float16 => 2,
        }
    }

    fn burn(self) -> DType {
        match self {
            SaveDtype::Float32 => DType::F32,
            SaveDtype::BFloat16 => DType::BF16,
            SaveDtype::Float16 => DType::F16,
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            SaveDtype::Float32 => Dtype::F32,
            SaveDtype::BFloat16 => Dtype::BF16,
            SaveDtype::Float16 => Dtype::F16,
        }
    }
}

impl FromStr for SaveDtype {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "float32" | "f32" | "fp32" => Ok(SaveDtype::Float32),
            "bfloat16" | "bf16" => Ok(SaveDtype::BFloat16),
            "float16" | "f16" | "fp16" => Ok(SaveDtype::Float16),
            other => {
                Err(format!("unknown save dtype {other:?}: expected float32, bfloat16 or float16"))
            }
        }
    }
}

impl std::fmt::Display for SaveDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a checkpoint's weights are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOptions {
    /// The on-disk element type.
    pub dtype: SaveDtype,
    /// Largest shard in bytes of tensor data (transformers' `max_shard_size`); a model that fits
    /// is one `model.safetensors`.
    pub max_shard_bytes: u64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self { dtype: SaveDtype::Float32, max_shard_bytes: DEFAULT_MAX_SHARD_BYTES }
    }
}

/// A named tensor to be written, produced only when its shard is written so that at most one
/// shard's bytes are held at a time.
pub struct PendingTensor<'a> {
    /// The checkpoint key.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Produces its values (any float dtype; converted on the way out).
    pub values: Box<dyn Fn() -> TensorData + 'a>,
}

impl PendingTensor<'_> {
    fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// Groups tensor sizes (bytes) into shards of at most `max_bytes`, in order, as
/// `huggingface_hub` does: returns each shard's tensor indices.
pub fn plan_shards(sizes: &[u64], max_bytes: u64) -> Vec<Vec<usize>> {
    let mut shards: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if size > max_bytes {
            shards.push(vec![i]);
            continue;
        }
        if current_bytes + size > max_bytes && !current.is_empty() {
            shards.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current.push(i);
        current_bytes += size;
    }
    if !current.is_empty() {
        shards.push(current);
    }
    shards
}

/// transformers' shard file name: `model-00002-of-00003.safetensors`.
pub fn shard_name(index: usize, count: usize) -> String {
    format!("model-{:05}-of-{count:05}.safetensors", index + 1)
}

/// Writes `tensors` into `dir` as one `model.safetensors` or as shards with their index.
///
/// Every file is written under a temporary name, synced and renamed; the index is written after
/// every shard it names is in place, and files of an earlier save in the same folder (a single
/// file, or shards the new index does not name) are removed only after that, so a reader never
/// finds an index naming a missing or partial shard.
pub fn write_weights(
    dir: &Path,
    tensors: Vec<PendingTensor<'_>>,
    options: &SaveOptions,
) -> Result<()> {
    let dtype = options.dtype;
    let sizes: Vec<u64> = tensors.iter().map(|t| t.elements() * dtype.size()).collect();
    let shards = plan_shards(&sizes, options.max_shard_bytes.max(1));
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    if shards.len() <= 1 {
        let path = dir.join(SAFETENSORS_SINGLE);
        let all: Vec<&PendingTensor<'_>> = tensors.iter().collect();
        write_atomically(&path, &serialize(&path, &all, dtype, metadata)?)?;
        return remove_stale(dir, &[SAFETENSORS_SINGLE]);
    }
    let names: Vec<String> = (0..shards.len()).map(|i| shard_name(i, shards.len())).collect();
    let mut weight_map = BTreeMap::new();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (shard, name) in shards.iter().zip(&names) {
        let part: Vec<&PendingTensor<'_>> = shard.iter().map(|&i| &tensors[i]).collect();
        let path = dir.join(name);
        let bytes = serialize(&path, &part, dtype, metadata.clone())?;
        let tmp = dir.join(format!("{name}.tmp"));
        write_synced(&tmp, &bytes)?;
        staged.push((tmp, path));
        for t in part {
            weight_map.insert(t.name.clone(), name.clone());
        }
    }
    for (tmp, path) in &staged {
        std::fs::rename(tmp, path).map_err(|e| ModelError::io(path, e))?;
    }
    let parameters: u64 = tensors.iter().map(PendingTensor::elements).sum();
    let index = serde_json::json!({
        "metadata": { "total_parameters": parameters, "total_size": sizes.iter().sum::<u64>() },
        "weight_map": weight_map,
    });
    let text = serde_json::to_string_pretty(&index).expect("JSON values serialise");
    write_atomically(&dir.join(SAFETENSORS_INDEX), text.as_bytes())?;
    let mut keep: Vec<&str> = names.iter().map(String::as_str).collect();
    keep.push(SAFETENSORS_INDEX);
    remove_stale(dir, &keep)
}

/// One safetensors file of `tensors`, converted to `dtype`.
fn serialize(
    path: &Path,
    tensors: &[&PendingTensor<'_>],
    dtype: SaveDtype,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let invalid = |message: String| ModelError::Safetensors { path: path.to_path_buf(), message };
    let data: Vec<TensorData> =
        tensors.iter().map(|t| (t.values)().convert_dtype(dtype.burn())).collect();
    let mut views = Vec::with_capacity(data.len());
    for (t, d) in tensors.iter().zip(&data) {
        let view = safetensors::tensor::TensorView::new(
            dtype.safetensors(),
            t.shape.clone(),
            d.as_bytes(),
        )
        .map_err(|e| invalid(format!("`{}`: {e}", t.name)))?;
        views.push((t.name.clone(), view));
    }
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| invalid(e.to_string()))
}

/// Writes and syncs `path` (a temporary name the caller renames).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    file.write_all(bytes).map_err(|e| ModelError::io(path, e))?;
    file.sync_all().map_err(|e| ModelError::io(path, e))
}

/// Removes weight files of an earlier save that `keep` does not name: the single file, the
/// index, and `model-*-of-*.safetensors` shards.
fn remove_stale(dir: &Path, keep: &[&str]) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == SAFETENSORS_SINGLE
            || name == SAFETENSORS_INDEX
            || (name.starts_with("model-")
                && name.contains("-of-")
                && name.ends_with(".safetensors"));
        if ours && !keep.contains(&name.as_str()) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| ModelError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_as_huggingface_hub_splits_them() {
        // The example of huggingface_hub's docstring, in GB: [6, 6, 2, 6, 2, 2] under 10.
        assert_eq!(plan_shards(&[6, 6, 2, 6, 2, 2], 10), vec![vec![0], vec![1, 2], vec![3, 4, 5]]);
        // A tensor over the limit sits alone; the shard being filled continues after it.
        assert_eq!(plan_shards(&[1, 20, 1, 1], 2), vec![vec![1], vec![0, 2], vec![3]]);
        assert_eq!(plan_shards(&[3, 3], 100), vec![vec![0, 1]]);
        assert!(plan_shards(&[], 10).is_empty());
        assert_eq!(shard_name(0, 3), "model-00001-of-00003.safetensors");
    }

    #[test]
    fn save_dtypes_parse_by_torch_name() {
        assert_eq!("bfloat16".parse::<SaveDtype>(), Ok(SaveDtype::BFloat16));
        assert_eq!("float32".parse::<SaveDtype>(), Ok(SaveDtype::Float32));
        assert!("int8".parse::<SaveDtype>().unwrap_err().contains("bfloat16"));
    }
}
