//! Where a model's tensors come from: a Hugging Face safetensors checkpoint (single file or
//! sharded with `model.safetensors.index.json`; float32, float16 or bfloat16 on disk), or a seeded
//! random initialisation for from-scratch models. Both implement [`WeightSource`], so one
//! construction path builds the model either way and every key is checked by name and shape.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

/// How a tensor is initialised when it is not loaded from a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Normal(0, std) with the source's standard deviation (weights, embeddings).
    Normal,
    /// All ones (norm gains).
    Ones,
    /// All zeros (biases).
    Zeros,
}

/// Supplies named tensors of known shape to the model constructor.
pub trait WeightSource<B: Backend> {
    /// Returns the tensor called `key` with exactly `shape`, or an error naming it.
    fn tensor<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
        init: Init,
    ) -> Result<Tensor<B, D>>;
}

/// Seeded random initialisation (Normal(0, `std`) weights, unit norms, zero biases), the same
/// on every device: values are drawn on the host in construction order.
pub struct RandomInit<B: Backend> {
    rng: StdRng,
    std: f64,
    device: B::Device,
}

impl<B: Backend> RandomInit<B> {
    /// A source drawing from a generator seeded with `seed`.
    pub fn new(seed: u64, std: f64, device: &B::Device) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), std, device: device.clone() }
    }
}

impl<B: Backend> WeightSource<B> for RandomInit<B> {
    fn tensor<const D: usize>(
        &mut self,
        _key: &str,
        shape: [usize; D],
        init: Init,
    ) -> Result<Tensor<B, D>> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal => {
                (0..n).map(|_| (standard_normal(&mut self.rng) * self.std) as f32).collect()
            }
        };
        Ok(Tensor::from_data(TensorData::new(values, shape), &self.device))
    }
}

/// Box-Muller transform: one standard normal draw from two uniforms.
fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One tensor's location inside a loaded safetensors file.
struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    range: std::ops::Range<usize>,
}

/// Tensors read from a Hugging Face checkpoint folder. Tracks which keys were used so that
/// [`SafetensorsWeights::finish`] can refuse a checkpoint with unexpected weights.
pub struct SafetensorsWeights<B: Backend> {
    files: Vec<(PathBuf, Vec<u8>)>,
    entries: BTreeMap<String, Entry>,
    used: BTreeSet<String>,
    /// Keys that may be present and are ignored (buffers older exports include).
    ignorable: Vec<String>,
    folder: PathBuf,
    device: B::Device,
}

impl<B: Backend> SafetensorsWeights<B> {
    /// Opens `model.safetensors`, or the shards listed in `model.safetensors.index.json`.
    pub fn open(folder: &Path, device: &B::Device) -> Result<Self> {
        let single = folder.join("model.safetensors");
        let index = folder.join("model.safetensors.index.json");
        let paths = if single.exists() {
            vec![single]
        } else if index.exists() {
            shard_paths(&index)?
        } else {
            return Err(ModelError::io(
                &single,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json in this folder",
                ),
            ));
        };
        let mut this = Self::empty(folder, device);
        for path in paths {
            this.add_file(path)?;
        }
        Ok(this)
    }

    /// Opens one safetensors file (a PEFT `adapter_model.safetensors`, say).
    pub fn open_file(path: &Path, device: &B::Device) -> Result<Self> {
        let mut this = Self::empty(path, device);
        this.add_file(path.to_path_buf())?;
        Ok(this)
    }

    /// No files yet; errors will name `folder`.
    fn empty(folder: &Path, device: &B::Device) -> Self {
        Self {
            files: Vec::new(),
            entries: BTreeMap::new(),
            used: BTreeSet::new(),
            ignorable: Vec::new(),
            folder: folder.to_path_buf(),
            device: device.clone(),
        }
    }

    fn add_file(&mut self, path: PathBuf) -> Result<()> {
        let bytes = std::fs::read(&path).map_err(|e| ModelError::io(&path, e))?;
        let invalid = |message: String| ModelError::Safetensors { path: path.clone(), message };
        // `deserialize` validates the header and that every tensor lies inside the file, which
        // is what catches truncated downloads.
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| invalid(e.to_string()))?;
        let (header_len, _) =
            SafeTensors::read_metadata(&bytes).map_err(|e| invalid(e.to_string()))?;
        let data_start = 8 + header_len;
        let base = bytes.as_ptr() as usize;
        let file = self.files.len();
        for (name, view) in tensors.tensors() {
            // The view borrows `bytes`; record its byte range so the file can be moved below.
            let start = view.data().as_ptr() as usize - base;
            debug_assert!(start >= data_start);
            let entry = Entry {
                file,
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                range: start..start + view.data().len(),
            };
            if self.entries.insert(name.clone(), entry).is_some() {
                return Err(invalid(format!("tensor `{name}` appears in more than one file")));
            }
        }
        self.files.push((path, bytes));
        Ok(())
    }

    /// Keys that are accepted and ignored if present (for example `lm_head.weight` in a
    /// checkpoint of a tied model, or `rotary_emb.inv_freq` buffers).
    pub fn ignore_if_present(&mut self, key: impl Into<String>) {
        self.ignorable.push(key.into());
    }

    /// The shape of tensor `key` in the files, if present.
    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.entries.get(key).map(|e| e.shape.as_slice())
    }

    /// Fails if the checkpoint holds tensors the model did not ask for.
    pub fn finish(self, family: &str) -> Result<()> {
        let unexpected: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !self.used.contains(*k))
            .filter(|k| {
                !self.ignorable.iter().any(|i| i == *k) && !k.ends_with("rotary_emb.inv_freq")
            })
            .cloned()
            .collect();
        if unexpected.is_empty() {
            Ok(())
        } else {
            Err(ModelError::UnexpectedWeights {
                path: self.folder,
                keys: unexpected,
                family: family.into(),
            })
        }
    }
}

impl<B: Backend> WeightSource<B> for SafetensorsWeights<B> {
    fn tensor<const D: usize>(
        &mut self,
        key: &str,
        shape: [usize; D],
        _init: Init,
    ) -> Result<Tensor<B, D>> {
        let Some(entry) = self.entries.get(key) else {
            return Err(ModelError::MissingWeight {
                path: self.folder.clone(),
                key: key.into(),
                expected: shape.to_vec(),
            });
        };
        let path = &self.files[entry.file].0;
        if entry.shape != shape {
            return Err(ModelError::ShapeMismatch {
                path: path.clone(),
                key: key.into(),
                found: entry.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        let dtype = match entry.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::Dtype {
                    path: path.clone(),
                    key: key.into(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let bytes = self.files[entry.file].1[entry.range.clone()].to_vec();
        let data = TensorData::from_bytes_vec(bytes, shape, dtype).convert::<B::FloatElem>();
        self.used.insert(key.to_string());
        Ok(Tensor::from_data(data, &self.device))
    }
}

/// The distinct shard files named by a `model.safetensors.index.json`, in first-use order.
fn shard_paths(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ModelError::json(index, &e))?;
    let map =
        json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| ModelError::Json {
            path: index.to_path_buf(),
            message: "expected an object `weight_map` mapping tensor names to shard files".into(),
        })?;
    let folder = index.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = Vec::new();
    for (key, file) in map {
        let file = file.as_str().ok_or_else(|| ModelError::Json {
            path: index.to_path_buf(),
            message: format!("`weight_map.{key}` must be a file name"),
        })?;
        let path = folder.join(file);
        if !files.contains(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// Writes tensors as a safetensors file, atomically (a temporary file renamed into place), so an
/// interrupted save never leaves a truncated checkpoint behind.
pub fn write_safetensors(
    path: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, values)| {
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, raw)
        })
        .collect();
    let mut views = Vec::with_capacity(bytes.len());
    for (name, shape, raw) in &bytes {
        let view =
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), raw).map_err(|e| {
                ModelError::Safetensors { path: path.to_path_buf(), message: e.to_string() }
            })?;
        views.push((name.clone(), view));
    }
    let serialized = safetensors::tensor::serialize(views, metadata).map_err(|e| {
        ModelError::Safetensors { path: path.to_path_buf(), message: e.to_string() }
    })?;
    write_atomically(path, &serialized)
}

/// Writes `bytes` to a sibling temporary file, syncs it, and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path
        .with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut file = std::fs::File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| ModelError::io(&tmp, e))?;
    file.sync_all().map_err(|e| ModelError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}
