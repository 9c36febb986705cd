//! The gradient bucket: every trainable parameter's gradient flattened into one float32 buffer
//! in the model's visiting order, summed over the ranks in one collective, and put back. A
//! parameter a rank has no gradient for (no sequence of its share reached it) contributes
//! zeros; one that no rank has a gradient for stays without one, so AdamW leaves it alone as a
//! single process would.
//!
//! The bucket is summed where the collectives can take it: on the device (NCCL on GPUs), built
//! there by concatenating the gradients; otherwise on the host (MPI), copied there. Parameters
//! are float32 in both (bf16 is a compute precision here, not a storage one).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{FloatDType, Tensor, TensorData};
use spiral_model::CausalLm;

use super::{Collectives, DeviceBucket};

/// The learner's gradients: those of its backend's inner (non-autodiff) backend.
type Grad<B> = Tensor<<B as AutodiffBackend>::InnerBackend, 1>;

/// Where one parameter sits in the bucket.
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    start: usize,
    len: usize,
}

/// [`sum_gradients`] where there are several ranks; nothing on one.
pub(crate) fn all_reduce_gradients<B: AutodiffBackend>(
    model: &CausalLm<B>,
    grads: &mut GradientsParams,
    world: &dyn Collectives,
) -> Result<(), String> {
    if world.world_size() == 1 {
        return Ok(());
    }
    sum_gradients(model, grads, world)
}

/// Sums `grads`, the gradients of `model`'s parameters, over the ranks of `world`, in place: on
/// the device where `world` sums there ([`Collectives::sums_on_device`]), else on the host.
pub fn sum_gradients<B: AutodiffBackend>(
    model: &CausalLm<B>,
    grads: &mut GradientsParams,
    world: &dyn Collectives,
) -> Result<(), String> {
    let slots = slots(model);
    let pieces = take_flat::<B>(model, grads, slots.len());
    let summed = if world.sums_on_device() {
        sum_on_device::<B>(&slots, pieces, world, &model.device())?
    } else {
        sum_on_host::<B>(&slots, pieces, world, &model.device())
    };
    for (slot, grad) in slots.iter().zip(summed) {
        if let Some(grad) = grad {
            register::<B>(grads, slot, grad);
        }
    }
    Ok(())
}

/// The bucket on the host: values, then one presence flag per parameter, summed by
/// [`Collectives::sum_f32`]; each parameter's sum, if any rank had a gradient for it.
fn sum_on_host<B: AutodiffBackend>(
    slots: &[Slot],
    pieces: Vec<Option<Grad<B>>>,
    world: &dyn Collectives,
    device: &B::Device,
) -> Vec<Option<Grad<B>>> {
    let total = slots.last().map_or(0, |s| s.start + s.len);
    let mut bucket = vec![0.0f32; total + slots.len()];
    for (i, (slot, piece)) in slots.iter().zip(pieces).enumerate() {
        let Some(piece) = piece else { continue };
        let values = piece.into_data().convert::<f32>().into_vec::<f32>().expect("f32 data");
        bucket[slot.start..slot.start + slot.len].copy_from_slice(&values);
        bucket[total + i] = 1.0;
    }
    world.sum_f32(&mut bucket);
    slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            (bucket[total + i] != 0.0).then(|| {
                let values = bucket[slot.start..slot.start + slot.len].to_vec();
                Tensor::from_data(TensorData::new(values, [slot.len]), device)
            })
        })
        .collect()
}

/// The bucket on the device, laid out as on the host, summed by
/// [`Collectives::sum_on_device`]; only the presence flags come to the host.
fn sum_on_device<B: AutodiffBackend>(
    slots: &[Slot],
    pieces: Vec<Option<Grad<B>>>,
    world: &dyn Collectives,
    device: &B::Device,
) -> Result<Vec<Option<Grad<B>>>, String> {
    let total = slots.last().map_or(0, |s| s.start + s.len);
    let mut flags = vec![0.0f32; slots.len()];
    let mut parts = Vec::with_capacity(slots.len() + 1);
    for ((slot, piece), flag) in slots.iter().zip(pieces).zip(&mut flags) {
        parts.push(match piece {
            Some(piece) => {
                *flag = 1.0;
                piece.cast(FloatDType::F32)
            }
            None => Grad::<B>::zeros([slot.len], device),
        });
    }
    parts.push(Tensor::from_data(TensorData::new(flags, [slots.len()]), device));
    let bucket: DeviceBucket = Box::new(Tensor::cat(parts, 0));
    let summed = world.sum_on_device(bucket)?;
    let summed = *summed
        .downcast::<Grad<B>>()
        .map_err(|_| "the device sum gave back a tensor of another backend".to_string())?;
    let flags = summed.clone().slice(total..total + slots.len()).into_data();
    let flags = flags.convert::<f32>().into_vec::<f32>().expect("f32 data");
    Ok(slots
        .iter()
        .zip(flags)
        .map(|(slot, flag)| {
            (flag != 0.0).then(|| summed.clone().slice(slot.start..slot.start + slot.len))
        })
        .collect())
}

/// Every parameter that requires a gradient, in visiting order, with its place in the bucket.
fn slots<B: AutodiffBackend>(model: &CausalLm<B>) -> Vec<Slot> {
    struct Slots(Vec<Slot>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Slots {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let tensor = param.val();
            if !tensor.is_require_grad() {
                return;
            }
            let start = self.0.last().map_or(0, |s: &Slot| s.start + s.len);
            let shape = tensor.dims().to_vec();
            let len = shape.iter().product();
            self.0.push(Slot { id: param.id, shape, start, len });
        }
    }
    let mut slots = Slots(Vec::new());
    Module::<B>::visit(model, &mut slots);
    slots.0
}

/// Takes each trainable parameter's gradient out of `grads`, flattened, in visiting order
/// (`None` where this rank has none).
fn take_flat<B: AutodiffBackend>(
    model: &CausalLm<B>,
    grads: &mut GradientsParams,
    count: usize,
) -> Vec<Option<Grad<B>>> {
    struct Take<'a, B: AutodiffBackend> {
        grads: &'a mut GradientsParams,
        pieces: Vec<Option<Grad<B>>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Take<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !param.val().is_require_grad() {
                return;
            }
            let grad = self.grads.remove::<B::InnerBackend, D>(param.id);
            self.pieces.push(grad.map(|g| g.flatten(0, D - 1)));
        }
    }
    let mut take = Take::<B> { grads, pieces: Vec::with_capacity(count) };
    Module::<B>::visit(model, &mut take);
    take.pieces
}

/// Registers `flat`, the summed gradient of `slot`, in the parameter's shape.
fn register<B: AutodiffBackend>(grads: &mut GradientsParams, slot: &Slot, flat: Grad<B>) {
    let s = &slot.shape;
    match s.len() {
        1 => grads.register(slot.id, flat),
        2 => grads.register(slot.id, flat.reshape([s[0], s[1]])),
        3 => grads.register(slot.id, flat.reshape([s[0], s[1], s[2]])),
        rank => unreachable!("parameters have 1 to 3 dimensions, not {rank}"),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use spiral_model::ModelConfig;

    use super::*;

    type B = Autodiff<Flex>;

    /// Two ranks with the same gradients, summing on the host or (as NCCL would) on the device.
    struct TwoAlike {
        on_device: bool,
    }

    impl Collectives for TwoAlike {
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            2
        }
        fn sum_f32(&self, values: &mut [f32]) {
            values.iter_mut().for_each(|x| *x *= 2.0);
        }
        fn sum_f64(&self, values: &mut [f64]) {
            values.iter_mut().for_each(|x| *x *= 2.0);
        }
        fn gather_bytes(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
            vec![bytes.to_vec(); 2]
        }
        fn sums_on_device(&self) -> bool {
            self.on_device
        }
        fn sum_on_device(&self, bucket: DeviceBucket) -> Result<DeviceBucket, String> {
            let bucket = bucket.downcast::<Tensor<Flex, 1>>().expect("a Flex bucket");
            Ok(Box::new(*bucket * 2.0))
        }
    }

    /// Each parameter's gradient values in visiting order, `None` where it has none.
    fn gradient_values(model: &CausalLm<B>, grads: &GradientsParams) -> Vec<Option<Vec<f32>>> {
        struct Read<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);
        impl ModuleVisitor<B> for Read<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let grad = self.0.get::<Flex, D>(param.id);
                self.1.push(grad.map(|g| g.into_data().to_vec::<f32>().unwrap()));
            }
        }
        let mut read = Read(grads, Vec::new());
        model.visit(&mut read);
        read.1
    }

    #[test]
    fn the_device_bucket_sums_as_the_host_bucket_does() {
        let model =
            CausalLm::<B>::random(ModelConfig::small(40, 32, 2, 4), 7, 0.2, &Default::default())
                .unwrap();
        let grads_of = || {
            let seqs = vec![vec![3u32, 9, 1, 4, 7], vec![5, 2, 8]];
            let loss = model.token_logprobs(&seqs, &[1, 1], false).unwrap().logprobs.sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            // A parameter without a gradient on every rank keeps none.
            grads.remove::<Flex, 2>(model.embed_tokens.id);
            grads
        };
        let original = gradient_values(&model, &grads_of());
        assert!(original[0].is_none() && original.iter().filter(|g| g.is_some()).count() > 3);
        for on_device in [false, true] {
            let mut grads = grads_of();
            sum_gradients(&model, &mut grads, &TwoAlike { on_device }).unwrap();
            let summed = gradient_values(&model, &grads);
            assert_eq!(summed.len(), original.len());
            for (after, before) in summed.iter().zip(&original) {
                let doubled = before.as_ref().map(|g| g.iter().map(|x| x * 2.0).collect());
                assert_eq!(after, &doubled, "on the device: {on_device}");
            }
        }
    }
}
